"""RunRecord: one run's state in memory, written by its trainer thread or tailed from its folder, and the
RunSnapshot a page reads. RunStore (store.py) keeps many of them."""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError, RunConfig
from ..engine.checkpoint import checkpoints_to_drop
from . import files as rf
from . import tracking

LIVE_STATUSES = ("starting", "running", "paused")


MAX_ROWS_IN_MEMORY = 4000


MAX_GRIDS_IN_MEMORY = 24


CSV_CHUNK = 1 << 20  # metrics.csv is read a MiB at a time, downsampled as it goes: a 100 MB file never sits in memory


UNREADABLE = "unreadable"


# status.json keys and the types a page may rely on; a run whose file disagrees is listed as unreadable
STATUS_TYPES = {"status": str, "step": int, "elapsed": float, "message": str, "started_at": float, "updated_at": float,
                "pid": int, "host": str, "device": str, "precision": str, "last_checkpoint": str, "checkpoint_step": int}


def checked_status(data: dict) -> dict:
    """status.json with every known key of its type (finite, non-negative numbers); ValueError naming the first
    that is not."""
    out = dict(data)
    for key, kind in STATUS_TYPES.items():
        if key not in data:
            continue
        value = data[key]
        if kind is str:
            ok = isinstance(value, str) and len(value) <= 10_000
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
                0 <= value <= 1e13 and (kind is float or float(value).is_integer())
            value = kind(value) if ok else value
        if not ok:
            raise ValueError(f"status.json: {key} must be {'text' if kind is str else 'a number ≥ 0'}, "
                             f"got {rf.one_line(repr(value))[:60]}")
        out[key] = value
    return out


def recent_images_per_s(metrics: pd.DataFrame, windows: int = 10) -> float | None:
    """The one images/s every page shows: training images over the last `windows` logged windows (their harmonic
    mean, i.e. total images / total time), not the last window alone, which jumps with every hiccup of a shared
    CPU (Compare showed 662 for a run Monitor showed at 1,607)."""
    if "images_per_s" not in metrics:
        return None
    rates = [r for r in metrics["images_per_s"].dropna().tail(windows).to_numpy() if 0 < r < float("inf")]
    return float(len(rates) / sum(1 / r for r in rates)) if rates else None


@dataclass
class RunSnapshot:
    run_id: str
    status: str
    message: str
    step: int
    total_steps: int
    max_seconds: float
    elapsed: float
    progress: float
    images_per_s: float | None
    eta_seconds: float | None
    config: RunConfig | None  # the run's validated config; None for an unreadable run
    score_kind: str  # "probability" or "critic": how to label D(real)/D(fake)
    metrics: pd.DataFrame
    grid_steps: list[int]
    latest_grid: np.ndarray | None
    latest_grid_step: int | None
    events: list[str]
    device: str
    checkpoints: list[str]
    live_here: bool  # trained by a thread of this process
    run_dir: str = ""
    precision: str = ""  # what the run trains in and why ("fp32 — auto: no AMX")
    extra: dict = field(default_factory=dict)


class RunRecord:
    """One run's state: written by its trainer thread (or tailed from disk), read by any number of pages."""

    def __init__(self, run_id: str, run_dir: Path):
        self.run_id, self.dir = run_id, run_dir
        self.lock = threading.RLock()
        self.problem: str | None = None  # why the run's files cannot be used (listed as "unreadable: ...")
        self.config: dict = {}
        self.status: dict = {"status": "unknown", "step": 0}
        self.rows: list[dict] = []
        self.events: deque = deque(maxlen=200)
        self._grid_steps: list[int] = []
        self._grids: OrderedDict = OrderedDict()
        self._csv_pos, self._csv_header = 0, rf.METRIC_COLUMNS
        self._samples_mtime = None
        self._status_written = 0.0
        self._snapshot: tuple | None = None  # (what it was made from, the snapshot): see snapshot()
        self.trainer = None
        self.thread: threading.Thread | None = None
        self.hooks: list = []  # a queued run's trainer hooks, given to its Trainer when it starts
        self.tracker: tracking.Tracker | None = None  # TensorBoard / MLflow, when the config asks for them
        try:
            self.config = RunConfig.from_dict(rf.load_json(run_dir / "config.json", run_dir)).to_dict()
        except FileNotFoundError:  # the store lists only folders with one; a bare record (tests) has none
            pass
        except ConfigError as e:
            self.problem = "config.json: " + rf.one_line(str(e))[:300]
        except (OSError, ValueError) as e:
            self.problem = rf.one_line(str(e))[:300]
        self._read_status()

    # ------------------------------------------------------------------ writer side (trainer thread)
    def set_status(self, **changes) -> None:
        if isinstance(changes.get("message"), str):  # shown to every viewer: no server path (files.hide_paths)
            changes["message"] = rf.hide_paths(changes["message"], self.dir.parent)
        with self.lock:
            self.status.update(changes, updated_at=time.time())
            data = json.dumps(self.status, indent=1)
            self._status_written = time.monotonic()
        write_status(self.dir, data)

    def heartbeat(self, step: int, elapsed: float) -> None:
        with self.lock:
            self.status.update(step=step, elapsed=round(elapsed, 3))
            if time.monotonic() - self._status_written < 1.0:
                return
        self.set_status()

    def add_metrics(self, rows: list[dict]) -> None:
        with self.lock:
            self.rows.extend(rows)
            if len(self.rows) > MAX_ROWS_IN_MEMORY:  # halve the resolution, keep the whole run's span
                self.rows = self.rows[:-1:2] + [self.rows[-1]]
            rf.append_text(self.dir / "metrics.csv", rf.csv_lines(rows), self.dir)
            self._csv_pos = (self.dir / "metrics.csv").stat().st_size
        if self.tracker is not None:
            self.tracker.log_rows(rows)

    def add_grid(self, step: int, image: np.ndarray) -> None:
        rf.save_png(rf.grid_path(self.dir, step), image, self.dir)
        with self.lock:
            if step not in self._grid_steps:
                self._grid_steps.append(step)
            self._remember_grid(step, image)
        if self.tracker is not None:
            self.tracker.log_grid(step, rf.grid_path(self.dir, step))

    def note(self, message: str) -> None:
        message = rf.hide_paths(rf.one_line(message), self.dir.parent)  # a newline forges no line; no server path
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with self.lock:
            self.events.append(line)
            rf.append_text(self.dir / "events.log", line + "\n", self.dir)

    def checkpoint_path(self, step: int) -> Path:
        return rf.checkpoint_path(self.dir, step)

    def checkpoint_saved(self, step: int, path: Path) -> None:
        saved = {int(p.stem[5:]): p for p in rf.list_checkpoints(self.dir)}
        for old in checkpoints_to_drop(list(saved), KEEP_CHECKPOINTS):
            saved[old].unlink(missing_ok=True)
        self.set_status(last_checkpoint=path.name, checkpoint_step=step)
        if self.tracker is not None:
            self.tracker.log_checkpoint(step, path)

    def poll_control(self, controls) -> None:
        """Apply a pause/resume/stop request another process left in control.json."""
        path = self.dir / "control.json"
        if not path.exists():
            return
        request = rf.read_json(path, self.dir) or {}
        path.unlink(missing_ok=True)
        command = request.get("command")
        if command == "pause":
            controls.request_pause()
        elif command == "resume":
            controls.request_resume()
        elif command == "stop":
            controls.request_stop()

    def release(self) -> None:
        if self.tracker is not None:  # flushed before the lock goes: a resume then starts from a closed run
            tracker, self.tracker = self.tracker, None
            tracker.close(self.status.get("status", "finished"))
        rf.release_writer_lock(self.dir)

    # ------------------------------------------------------------------ reader side
    def _remember_grid(self, step: int, image: np.ndarray) -> None:
        self._grids[step] = image
        self._grids.move_to_end(step)
        while len(self._grids) > MAX_GRIDS_IN_MEMORY:
            self._grids.popitem(last=False)

    def live_here(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _read_status(self) -> None:
        try:
            status = checked_status(rf.load_json(self.dir / "status.json", self.dir))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            if self.thread is None:  # a run this process trains keeps its own status
                self.problem = self.problem or rf.one_line(str(e))[:300]
            return
        if self.problem and self.problem.startswith("status.json"):
            self.problem = None
        # A run this process trained keeps its own last word when the disk could not take it (disk full)
        if self.thread is None or status.get("updated_at", 0) >= self.status.get("updated_at", 0):
            self.status = status

    def refresh(self, details: bool = True) -> None:
        """Catch up with the folder (a run written by another process, or one loaded after a restart).
        `details`: also the curves and grids (a listing needs only the status)."""
        if self.live_here():
            return
        with self.lock:
            self._read_status()
            if self.problem:
                return
            if self.status.get("status") in LIVE_STATUSES + (QUEUED,) and not rf.writer_alive(self.dir):
                self._read_status()  # the writer may have written its last word (stopped) and ended since the read
                self._mark_abandoned()
            if details:
                self._tail_metrics()
                self._rescan_samples()

    def _mark_abandoned(self) -> None:
        """The run's writer is gone (checked by the caller, holding self.lock): a run still said to be queued or
        training was left by a process that ended, and says so on disk too."""
        status = self.status.get("status")
        if status == QUEUED:
            self.status["status"] = "cancelled"
            self.status["message"] = "it waited in the queue of a server that has stopped; start it again " \
                                     "from Train (its config is saved)"
        elif status in LIVE_STATUSES:
            self.status["status"] = "interrupted"
            self.status["message"] = "the process training this run ended unexpectedly; press Resume to continue " \
                                     "from the last checkpoint"
        else:
            return
        with contextlib.suppress(OSError, ValueError):  # reading never fails because the disk is full or read-only
            rf.atomic_write(self.dir / "status.json", json.dumps(self.status, indent=1), self.dir)

    def forget_details(self) -> None:
        """Drop the curves and grids held in memory (they reload from disk on the next snapshot)."""
        with self.lock:
            self.rows, self._csv_pos, self._csv_header = [], 0, rf.METRIC_COLUMNS
            self._grids.clear()

    def rewind(self, step: int, cfg: RunConfig) -> None:
        """The folder and this record as they were at `step`, under `cfg` (a resume from that step's checkpoint):
        no temp files, later metric rows and grids gone."""
        rf.remove_temp_files(self.dir)
        rf.atomic_write(self.dir / "config.json", cfg.to_json(), self.dir)
        rf.truncate_metrics(self.dir / "metrics.csv", step, self.dir)
        for later in rf.list_grid_steps(self.dir):
            if later > step:
                rf.grid_path(self.dir, later).unlink(missing_ok=True)
        with self.lock:
            self.config = cfg.to_dict()
            self._grid_steps = rf.list_grid_steps(self.dir)
            self._grids.clear()
            self._csv_pos = 0
            self.rows = []
            self._tail_metrics()

    def _tail_metrics(self) -> None:
        """Read what was appended to metrics.csv since last time, a chunk at a time, halving the resolution
        whenever the rows pass MAX_ROWS_IN_MEMORY: memory stays bounded whatever the file's size."""
        path = self.dir / "metrics.csv"
        try:
            f = rf.safe_io.open_inside(path, "rb", inside=self.dir)
        except (OSError, ValueError):
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            if size < self._csv_pos:  # rewritten (a resume truncated it): start over
                self._csv_pos, self.rows = 0, []
            f.seek(self._csv_pos)
            while self._csv_pos < size:
                chunk = f.read(min(CSV_CHUNK, size - self._csv_pos))
                end = chunk.rfind(b"\n") + 1  # only whole lines; a half-written row waits for the next refresh
                if not chunk or (end == 0 and len(chunk) < CSV_CHUNK):
                    break
                if end == 0:  # a line longer than a chunk is no metrics row: skip it
                    self._csv_pos += len(chunk)
                    continue
                f.seek(self._csv_pos + end)
                text = chunk[:end].decode(errors="replace")
                if self._csv_pos == 0 and text:
                    first, _, text = text.partition("\n")
                    self._csv_header = first.split(",")[:64]
                self._csv_pos += end
                self.rows.extend(rf.parse_csv_text(text, self._csv_header))
                while len(self.rows) > MAX_ROWS_IN_MEMORY:
                    self.rows = self.rows[:-1:2] + [self.rows[-1]]

    def _rescan_samples(self) -> None:
        try:
            mtime = (self.dir / "samples").stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._samples_mtime:
            self._samples_mtime = mtime
            self._grid_steps = rf.list_grid_steps(self.dir)

    def grid_steps(self) -> list[int]:
        with self.lock:
            return list(self._grid_steps)

    def grid(self, step: int) -> np.ndarray | None:
        with self.lock:
            if step in self._grids:
                return self._grids[step]
        path = rf.grid_path(self.dir, step)
        try:
            image = rf.load_png(path, self.dir)
        except (OSError, ValueError, SyntaxError):  # PIL raises SyntaxError for some broken PNGs
            return None
        with self.lock:
            self._remember_grid(step, image)
        return image

    def summary(self) -> dict:
        with self.lock:
            s, c = dict(self.status), self.config
        if self.problem:
            return {"run_id": self.run_id, "name": "", "status": UNREADABLE, "step": 0, "total_steps": 0, "dataset": "?",
                    "arch": "?", "loss": "?", "preset": "", "started_at": 0.0, "updated_at": 0.0, "live_here": False,
                    "message": f"unreadable: {self.problem}"}
        return {"run_id": self.run_id, "name": c.get("name") or "", "status": s.get("status", "unknown"),
                "step": int(s.get("step", 0)), "total_steps": int(c.get("steps", 0) or 0),
                "dataset": c.get("dataset", "?"), "arch": c.get("arch", "?"), "loss": c.get("loss", "?"),
                "preset": c.get("preset", ""), "started_at": s.get("started_at", 0.0),
                "updated_at": s.get("updated_at", 0.0), "live_here": self.live_here()}

    def _files_stamp(self) -> tuple:
        """When the files a snapshot lists but no writer method announces last changed (checkpoints, eval.json)."""
        stamp = []
        for path in (self.dir / "checkpoints", self.dir / rf.EVAL_FILE):
            try:
                st = path.stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        return tuple(stamp)

    def _made_from(self, max_points: int) -> tuple:
        """Everything a snapshot is built from, cheaply compared (called holding the lock): the same tuple, the same
        snapshot. The status dict is small and flat; rows, grids, events and config are replaced or appended to."""
        last_row = id(self.rows[-1]) if self.rows else None
        last_event = id(self.events[-1]) if self.events else None
        return (max_points, tuple(self.status.items()), id(self.config), id(self.rows), len(self.rows), last_row,
                id(self._grid_steps), len(self._grid_steps), len(self.events), last_event, self.live_here(),
                self._files_stamp())

    def snapshot(self, max_points: int = 1500) -> RunSnapshot:
        """The run as a page draws it. Built once per change and shared by every caller (100 viewers of one live
        run ask 30 times a second; rebuilding the frame each time took the interpreter from the trainer):
        callers read it, never modify it."""
        self.refresh()
        if self.problem:
            return self._build_snapshot(max_points)
        with self.lock:
            made_from = self._made_from(max_points)
            if self._snapshot is not None and self._snapshot[0] == made_from:
                return self._snapshot[1]
        snap = self._build_snapshot(max_points)
        with self.lock:
            self._snapshot = (made_from, snap)
        return snap

    def _build_snapshot(self, max_points: int) -> RunSnapshot:
        if self.problem:
            return RunSnapshot(
                run_id=self.run_id, status=UNREADABLE, message=f"unreadable: {self.problem}", step=0, total_steps=0,
                max_seconds=0.0, elapsed=0.0, progress=0.0, images_per_s=None, eta_seconds=None, config=None,
                score_kind="critic", metrics=pd.DataFrame(columns=rf.METRIC_COLUMNS, dtype=float), grid_steps=[],
                latest_grid=None, latest_grid_step=None, events=[], device="", checkpoints=[], live_here=False,
                run_dir=str(self.dir), extra={"eval": None})
        with self.lock:
            s, c = dict(self.status), dict(self.config)
            rows = self.rows[:: max(1, len(self.rows) // max_points)] if len(self.rows) > max_points else list(self.rows)
            if self.rows and rows and rows[-1] is not self.rows[-1]:
                rows.append(self.rows[-1])
            steps = list(self._grid_steps)
            events = list(self.events)
        metrics = pd.DataFrame(rows, columns=rf.METRIC_COLUMNS) if rows else pd.DataFrame(columns=rf.METRIC_COLUMNS)
        metrics = metrics.astype(float)
        step, total, max_s = int(s.get("step", 0)), int(c.get("steps", 0) or 0), float(c.get("max_seconds", 0) or 0)
        elapsed = float(s.get("elapsed", 0.0))
        if len(metrics):
            step = max(step, int(metrics["step"].iloc[-1]))
            elapsed = max(elapsed, float(metrics["wall_time"].iloc[-1]))
        paused = s.get("status") == "paused"  # it trains nothing: no rate, no countdown (they would stand still)
        images_per_s = None if paused else recent_images_per_s(metrics)
        progress = max(step / total if total else 0.0, elapsed / max_s if max_s else 0.0)
        eta = None
        if s.get("status") in LIVE_STATUSES and not paused:
            etas = []
            if total and step and elapsed:
                etas.append((total - step) * elapsed / step)
            if max_s:
                etas.append(max(0.0, max_s - elapsed))
            eta = min(etas) if etas else None
        latest = steps[-1] if steps else None
        cfg = RunConfig.from_dict(c)  # checked when the record was read (else the run is unreadable)
        return RunSnapshot(
            run_id=self.run_id, status=s.get("status", "unknown"), message=s.get("message", ""), step=step,
            total_steps=total, max_seconds=max_s, elapsed=elapsed, progress=min(1.0, progress),
            images_per_s=images_per_s, eta_seconds=eta, config=cfg,
            score_kind=cfg.loss_info.scores, metrics=metrics, grid_steps=steps,
            latest_grid=self.grid(latest) if latest is not None else None, latest_grid_step=latest,
            events=events, device=s.get("device", ""), checkpoints=[p.name for p in rf.list_checkpoints(self.dir)],
            live_here=self.live_here(), run_dir=str(self.dir), precision=s.get("precision", ""), extra={"eval": self.evaluation()})

    def save_evaluation(self, data: dict) -> None:
        """The live evaluation's latest result (live_eval.py), as eval.json for pages and other processes."""
        rf.atomic_write(self.dir / rf.EVAL_FILE, json.dumps(data))

    def evaluation(self) -> dict | None:
        """The latest quality evaluation (eval.json, see live_eval.py), None before the first one or when the
        file is not what live_eval writes."""
        data = rf.read_json(self.dir / rf.EVAL_FILE, self.dir)
        if not data:
            return None
        numbers = ("fid", "step", "num_samples")
        if any(k in data and (isinstance(data[k], bool) or not isinstance(data[k], (int, float))) for k in numbers) \
                or not isinstance(data.get("histogram", []), list) or not isinstance(data.get("modes_text", ""), str) \
                or not all(isinstance(v, (int, float)) for v in data.get("histogram", [])):
            return None
        return data

    def read_file(self, relative: str, max_bytes: int) -> bytes:
        """A file of this run for a download: a regular file inside the run folder, never a link out of it."""
        return rf.safe_io.read_bytes(self.dir / relative, inside=self.dir, max_bytes=max_bytes)


def write_status(run_dir: Path, data: str) -> None:
    """status.json, atomically; on a full disk rewritten in place (its own blocks are freed first), so other
    processes learn why the run stopped instead of guessing "interrupted"."""
    try:
        rf.atomic_write(run_dir / "status.json", data, run_dir)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        with rf.safe_io.open_inside(run_dir / "status.json", "r+b", inside=run_dir) as f:
            f.truncate(0)
            f.write(data.encode())
        raise


QUEUED = "queued"  # waiting for a free slot (RunStore.max_runs); starts by itself, in order


KEEP_CHECKPOINTS = 5


def seconds_left(rec: RunRecord) -> float:
    """A training run's expected remaining seconds from its status (steps or max_seconds), inf when unknown."""
    with rec.lock:
        s, c = dict(rec.status), rec.config
    step, total, elapsed = int(s.get("step", 0)), int(c.get("steps", 0) or 0), float(s.get("elapsed", 0.0))
    left = [max(0.0, float(c.get("max_seconds") or 0) - elapsed)] if c.get("max_seconds") else []
    if total and step and elapsed:
        left.append((total - step) * elapsed / step)
    return min(left) if left else float("inf")
