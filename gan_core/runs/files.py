"""The on-disk layout of one run, `runs/<run-id>/`, and the small file operations the store needs.

    config.json      the RunConfig
    status.json      status, step, message, pid/host of the writer (atomic rewrite)
    metrics.csv      one row per logged step (appended); quality columns filled where an evaluation finished
    eval.json        the latest quality evaluation: class histogram, metrics, a short history (atomic rewrite)
    events.log       notes (skipped files, fallbacks, resumes)
    samples/step_<n>.png       every fixed-noise grid
    checkpoints/step_<n>.safetensors
    writer.lock      flock()ed by the process that writes the run (the kernel releases it when that process dies)
    tb/              TensorBoard event files (config `tensorboard`, or `export tensorboard`; tracking.py)
    mlflow.json      the MLflow run this run logs to (config `mlflow`; a resume continues it)
    control.json     a pause/resume/stop request from another process

Every file here is opened through safe_io (no link followed out of the run folder, regular files only), and
every value read back is checked before use: a run folder is input, anyone with write access to it may be hostile.
"""
from __future__ import annotations

import csv
import errno
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

from .. import safe_io
from ..errors import StudioError

METRIC_COLUMNS = ["step", "wall_time", "d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                  "lr_d", "lr_g", "images_per_s", "fid", "modes_covered", "confidence", "label_accuracy", "diversity",
                  "hq_percent",  # 2-D runs: modes_covered = mixture modes reached, hq_percent = share near a mode
                  "l1_loss", "psnr"]  # the last two: restorer runs (gan_core/restore/training.py)
EVAL_FILE = "eval.json"
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
HOST = socket.gethostname()
MAX_JSON_BYTES = 4 * 2**20  # status/config/eval/control files are kilobytes
MAX_STEP = 10**12
MAX_GRID_PIXELS = 40_000_000  # a 400-sample grid at 256×256 is 27 MP
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


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


def atomic_write(path: Path, data: bytes | str, inside: Path | None = None) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file. `inside`: the run
    folder (default: the file's own folder); no link below it is followed."""
    safe_io.atomic_write(path, data, inside=inside)


def append_text(path: Path, text: str, inside: Path | None = None) -> None:
    with safe_io.open_inside(path, "ab", inside=inside) as f:
        f.write(text.encode())


def one_line(text: str) -> str:
    """A value going into a line-based log: newlines and control characters shown escaped, never obeyed."""
    return CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], text)


# An absolute path in free text: /a/b…, ~/a…, C:\\a…, file:///a/b… (two names at least, so "images/s" and "1/2" stay).
_PATH_NAME = r"""[^\s/\\'"`<>|(){}\[\],;]"""  # one character of a file name inside free text
ABSOLUTE_PATH = re.compile(rf"(?<![\w.~/\\-])(?:~|[A-Za-z]:)?[/\\]+(?:{_PATH_NAME}+[/\\])+{_PATH_NAME}*")


def hide_paths(text: str, runs_root) -> str:
    """Free text (a note, an error) with no absolute server path left: one inside the runs folder becomes relative to
    it (`<run-id>/checkpoints/step_100.safetensors`), any other is cut to its last name (`…/data`). Classroom
    viewers read run notes and errors: the server's folders are not theirs to learn."""
    roots = {str(Path(runs_root).absolute()), os.path.realpath(runs_root)}

    def shorter(m: re.Match) -> str:
        scheme = re.search(r"([A-Za-z][\w+.-]*):$", m.string[:m.start()])
        if scheme and scheme.group(1).lower() != "file" and m.group().startswith("//"):
            return m.group()  # a web address's path is not the server's
        path = m.group().rstrip(".:")
        tail = m.group()[len(path):]
        path = re.sub(r"^[/\\]{2,}", "/", path)  # file:///a/b
        for root in roots:
            if path.startswith(root.rstrip("/\\") + os.sep):
                return path[len(root.rstrip("/\\")) + 1:] + tail
        name = re.split(r"[/\\]+", path.rstrip("/\\"))[-1]
        return f"…/{name}{tail}"
    return ABSOLUTE_PATH.sub(shorter, text)


def remove_temp_files(run_dir: Path) -> None:
    """Delete the half-written temp files a killed writer left behind (only while holding the writer lock)."""
    for folder in (run_dir, run_dir / "samples", run_dir / "checkpoints"):
        if folder.is_symlink() or not folder.is_dir():
            continue  # never delete inside a folder a link points to
        for path in folder.glob("*.tmp"):
            path.unlink(missing_ok=True)


def load_json(path: Path, inside: Path | None = None) -> dict:
    """A JSON object from a run file, or ValueError (UnsafeFile, too big, too deep, not an object) saying why."""
    data = safe_io.parse_json(safe_io.read_bytes(path, inside=inside, max_bytes=MAX_JSON_BYTES), Path(path).name)
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name}: expected a JSON object, got {type(data).__name__}")
    return data


def read_json(path: Path, inside: Path | None = None) -> dict | None:
    try:
        return load_json(path, inside)
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
        step = row.get("step")
        if step is not None and step.is_integer() and 0 <= step <= MAX_STEP:  # not inf, nan, -3 or 1.5
            row["step"] = int(step)
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


_HELD: dict[str, int] = {}  # run folder → the open, flock()ed writer.lock of this process
_HELD_LOCK = threading.Lock()


def _lock_info(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def _foreign_writer(info: dict) -> bool:
    """The lock names a writer on another machine: its flock may not reach us (a local lock on NFS), so it
    counts as alive, as it always did."""
    return isinstance(info.get("pid"), int) and isinstance(info.get("host"), str) and info["host"] != HOST


def _flock(fd: int, how: int) -> bool:
    """True when taken; False when another open file holds it. Filesystems without flock: the PID decides."""
    import fcntl
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        info = _lock_info(fd)
        return not (isinstance(info.get("pid"), int) and info["pid"] != os.getpid() and pid_alive(info["pid"], info.get("host", HOST)))


def _busy(run_dir: Path, info: dict) -> RunBusy:
    if isinstance(info.get("pid"), int):
        return RunBusy(f"run {run_dir.name} is already being trained by process {info['pid']} on "
                       f"{one_line(str(info.get('host', HOST)))[:100]}")
    return RunBusy(f"run {run_dir.name} is already being trained by another process or thread")


def acquire_writer_lock(run_dir: Path) -> None:
    """Claim the run for this process: an exclusive flock on writer.lock, held open until release (the kernel
    drops it when the process dies, so a dead writer never blocks a run, even if its PID is reused). A live
    writer elsewhere → RunBusy."""
    lock = run_dir / "writer.lock"
    for _ in range(8):
        fd = safe_io.open_fd(lock, os.O_RDWR | os.O_CREAT, inside=run_dir)
        try:
            if not _flock(fd, 2):  # LOCK_EX
                raise _busy(run_dir, _lock_info(fd))
            try:  # the holder we waited for may have removed the file: lock the one now at the path
                same = os.stat(lock, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = _lock_info(fd)
            if _foreign_writer(info):
                raise _busy(run_dir, info)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": HOST, "since": time.time()}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        with _HELD_LOCK:
            _HELD[str(run_dir)] = fd
        return
    raise RunBusy(f"could not claim run {run_dir.name}")


def writer_alive(run_dir: Path) -> bool:
    """Some process (this one included) holds the run's writer lock right now."""
    try:
        fd = safe_io.open_fd(run_dir / "writer.lock", os.O_RDONLY, inside=run_dir)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # a link or FIFO put there: never take over a run we cannot read the lock of
    try:
        if not _flock(fd, 1):  # LOCK_SH
            return True
        return _foreign_writer(_lock_info(fd))
    finally:
        os.close(fd)  # closing drops the shared lock we took to look


def lock_holder(run_dir: Path) -> dict:
    """What writer.lock says about its holder ({} when unreadable)."""
    return read_json(run_dir / "writer.lock") or {}


def holds_writer_lock(run_dir: Path) -> bool:
    with _HELD_LOCK:
        return str(run_dir) in _HELD


def release_writer_lock(run_dir: Path) -> None:
    with _HELD_LOCK:
        fd = _HELD.pop(str(run_dir), None)
    if fd is None:
        return
    try:
        if os.stat(run_dir / "writer.lock", follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            (run_dir / "writer.lock").unlink()  # still locked: a waiter re-checks the path after it gets the lock
    except OSError:
        pass
    finally:
        os.close(fd)


def grid_path(run_dir: Path, step: int) -> Path:
    return run_dir / "samples" / f"step_{step:08d}.png"


def _names(folder: Path, prefix: str, suffix: str) -> list[tuple[int, Path]]:
    """(step, path) of the regular files `<prefix><digits><suffix>` in `folder`; links and folders are skipped."""
    try:
        if not os.path.isdir(folder) or os.path.islink(folder):
            return []
        entries = list(os.scandir(folder))
    except OSError:
        return []
    out = []
    for e in entries:
        middle = e.name[len(prefix):-len(suffix)]
        if e.name.startswith(prefix) and e.name.endswith(suffix) and middle.isdigit() and len(middle) <= 12:
            try:
                if e.is_file(follow_symlinks=False):
                    out.append((int(middle), Path(e.path)))
            except OSError:
                continue
    return sorted(out)


def list_grid_steps(run_dir: Path) -> list[int]:
    return [step for step, _ in _names(run_dir / "samples", "step_", ".png")]


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[Path]:
    return [path for _, path in _names(run_dir / "checkpoints", "step_", ".safetensors")]


def save_png(path: Path, image: np.ndarray, inside: Path | None = None) -> None:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    atomic_write(path, buf.getvalue(), inside)


def load_png(path: Path, inside: Path | None = None) -> np.ndarray:
    """A saved grid; ValueError for a file that is not one (a link, a bomb, not a PNG)."""
    from PIL import Image
    with safe_io.open_inside(path, "rb", inside=inside) as f, Image.open(f) as img:
        if img.width * img.height > MAX_GRID_PIXELS:
            raise ValueError(f"{Path(path).name}: {img.width}×{img.height} pixels is not a sample grid")
        return np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)


def truncate_metrics(path: Path, last_step: int, inside: Path | None = None) -> None:
    """Drop rows logged after `last_step` (work lost since the checkpoint a resume starts from), and a last
    line a killed process left half-written. Rows are read with the file's own header, a chunk at a time."""
    try:
        src = safe_io.open_inside(path, "rb", inside=inside)
    except FileNotFoundError:
        return
    out = [",".join(METRIC_COLUMNS) + "\n"]
    with src:
        header, rest = None, b""
        while chunk := src.read(1 << 20):
            text, rest = (rest + chunk).rsplit(b"\n", 1) if b"\n" in rest + chunk else (b"", rest + chunk)
            lines = text.decode(errors="replace")
            if header is None:
                first, _, lines = lines.partition("\n")
                header = first.split(",")
            out.append(csv_lines([r for r in parse_csv_text(lines, header) if r["step"] <= last_step]))
    atomic_write(path, "".join(out), inside)
