"""The on-disk layout of one run, `runs/<run-id>/`, and the small file operations the store needs.

    config.json      the RunConfig
    status.json      status, step, message, pid/host of the writer (atomic rewrite)
    metrics.csv      one row per logged step (appended); quality columns filled where an evaluation finished
    eval.json        the latest quality evaluation: class histogram, metrics, a short history (atomic rewrite)
    events.log       notes (skipped files, fallbacks, resumes)
    samples/step_<n>.png       every fixed-noise grid
    checkpoints/step_<n>.safetensors
    writer.lock      present while a process writes the run
    control.json     a pause/resume/stop request from another process
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np

from .errors import StudioError

METRIC_COLUMNS = ["step", "wall_time", "d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                  "lr_d", "lr_g", "images_per_s", "fid", "modes_covered", "confidence", "label_accuracy", "diversity",
                  "l1_loss", "psnr"]  # the last two: restorer runs (gan_core/restore/training.py)
EVAL_FILE = "eval.json"
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
HOST = socket.gethostname()


class RunBusy(StudioError, RuntimeError):
    """Another live process or thread is already writing this run."""


def is_valid_run_id(run_id: str) -> bool:
    return isinstance(run_id, str) and bool(RUN_ID_RE.fullmatch(run_id)) and ".." not in run_id


def slug(text: str, limit: int = 40) -> str:
    """Anything → a safe file-name fragment (no separators, no dots at the start, bounded length)."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:limit]
    return out or "run"


def new_run_id(root: Path, label: str) -> str:
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(label)}"
    run_id, n = base, 1
    while (root / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


@contextlib.contextmanager
def atomic_file(path: Path):
    """A temp path in `path`'s folder to write to; renamed onto `path` when the block ends, so readers never see
    half a file. The one way GAN Studio replaces a file (JSON, checkpoints, evaluator weights)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:  # a full disk: the old file stays whole and no temp file is left taking space
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)


def remove_temp_files(run_dir: Path) -> None:
    """Delete the half-written temp files a killed writer left behind (only while holding the writer lock)."""
    for folder in (run_dir, run_dir / "samples", run_dir / "checkpoints"):
        for path in folder.glob("*.tmp"):
            path.unlink(missing_ok=True)


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def format_value(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def csv_lines(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in rows:
        w.writerow([format_value(row.get(c)) for c in METRIC_COLUMNS])
    return buf.getvalue()


def parse_csv_text(text: str, header: list[str]) -> list[dict]:
    rows = []
    for values in csv.reader(io.StringIO(text)):
        if not values or values == header or len(values) != len(header):  # a row cut short by a crash is skipped
            continue
        row = {}
        for key, value in zip(header, values):
            try:
                row[key] = float(value) if value != "" else None
            except ValueError:
                row[key] = None
        if row.get("step") is not None:
            row["step"] = int(row["step"])
            rows.append(row)
    return rows


def pid_alive(pid: int, host: str) -> bool:
    if host != HOST:
        return True  # another machine's writer: assume alive, never steal its run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def acquire_writer_lock(run_dir: Path) -> None:
    """Claim the run for this process; a live writer elsewhere → RunBusy. A dead writer's lock is taken over."""
    lock = run_dir / "writer.lock"
    info = json.dumps({"pid": os.getpid(), "host": HOST, "since": time.time()})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_json(lock) or {}
            pid, host = held.get("pid"), held.get("host", HOST)
            if isinstance(pid, int) and pid_alive(pid, host):
                raise RunBusy(f"run {run_dir.name} is already being trained by process {pid} on {host}") from None
            lock.unlink(missing_ok=True)  # stale: its writer died
            continue
        with os.fdopen(fd, "w") as f:
            f.write(info)
        return
    raise RunBusy(f"could not claim run {run_dir.name}")


def writer_alive(run_dir: Path) -> bool:
    held = read_json(run_dir / "writer.lock")
    return bool(held) and isinstance(held.get("pid"), int) and pid_alive(held["pid"], held.get("host", HOST))


def release_writer_lock(run_dir: Path) -> None:
    held = read_json(run_dir / "writer.lock")
    if held and held.get("pid") == os.getpid():
        (run_dir / "writer.lock").unlink(missing_ok=True)


def grid_path(run_dir: Path, step: int) -> Path:
    return run_dir / "samples" / f"step_{step:08d}.png"


def list_grid_steps(run_dir: Path) -> list[int]:
    folder = run_dir / "samples"
    if not folder.is_dir():
        return []
    return sorted(int(p.stem[5:]) for p in folder.glob("step_*.png") if p.stem[5:].isdigit())


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step_*.safetensors") if p.stem[5:].isdigit())


def save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    atomic_write(path, buf.getvalue())


def load_png(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop rows logged after `last_step` (work lost since the checkpoint a resume starts from), and a last
    line a killed process left half-written. Rows are read with the file's own header."""
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    header, _, body = text[:text.rfind("\n") + 1].partition("\n")
    rows = parse_csv_text(body, header.split(",") if header else METRIC_COLUMNS)
    atomic_write(path, ",".join(METRIC_COLUMNS) + "\n" + csv_lines([r for r in rows if r["step"] <= last_step]))
