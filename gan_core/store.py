"""RunStore: the one source of truth the dashboard reads. Thread-safe, bounded in memory, persisted to disk.

Trainer threads write into a RunRecord; pages call `snapshot()`. Runs written by another process (the CLI,
a previous server) are read from their folder, so they appear too, and are controllable via control.json.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import runfiles as rf
from .config import ConfigError, RunConfig
from .device import device_label
from .threads import torch_threads

LIVE_STATUSES = ("starting", "running", "paused")
QUEUED = "queued"  # waiting for a free slot (RunStore.max_runs); starts by itself, in order
MAX_ROWS_IN_MEMORY = 4000
MAX_GRIDS_IN_MEMORY = 24
KEEP_CHECKPOINTS = 5


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
    config: RunConfig  # typed; read leniently from the run folder (RunConfig.from_saved)
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
        self.config: dict = rf.read_json(run_dir / "config.json") or {}
        self.status: dict = rf.read_json(run_dir / "status.json") or {"status": "unknown", "step": 0}
        self.rows: list[dict] = []
        self.events: deque = deque(maxlen=200)
        self._grid_steps: list[int] = []
        self._grids: OrderedDict = OrderedDict()
        self._csv_pos, self._csv_header = 0, rf.METRIC_COLUMNS
        self._samples_mtime = None
        self._status_written = 0.0
        self.trainer = None
        self.thread: threading.Thread | None = None
        self.hooks: list = []  # a queued run's trainer hooks, given to its Trainer when it starts

    # ------------------------------------------------------------------ writer side (trainer thread)
    def set_status(self, **changes) -> None:
        with self.lock:
            self.status.update(changes, updated_at=time.time())
            data = json.dumps(self.status, indent=1)
            self._status_written = time.monotonic()
        rf.atomic_write(self.dir / "status.json", data)

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
            with open(self.dir / "metrics.csv", "a") as f:
                f.write(rf.csv_lines(rows))
            self._csv_pos = (self.dir / "metrics.csv").stat().st_size

    def add_grid(self, step: int, image: np.ndarray) -> None:
        rf.save_png(rf.grid_path(self.dir, step), image)
        with self.lock:
            if step not in self._grid_steps:
                self._grid_steps.append(step)
            self._remember_grid(step, image)

    def note(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with self.lock:
            self.events.append(line)
            with open(self.dir / "events.log", "a") as f:
                f.write(line + "\n")

    def checkpoint_path(self, step: int) -> Path:
        return rf.checkpoint_path(self.dir, step)

    def checkpoint_saved(self, step: int, path: Path) -> None:
        for old in rf.list_checkpoints(self.dir)[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        self.set_status(last_checkpoint=path.name, checkpoint_step=step)

    def poll_control(self, controls) -> None:
        """Apply a pause/resume/stop request another process left in control.json."""
        path = self.dir / "control.json"
        if not path.exists():
            return
        request = rf.read_json(path) or {}
        path.unlink(missing_ok=True)
        command = request.get("command")
        if command == "pause":
            controls.request_pause()
        elif command == "resume":
            controls.request_resume()
        elif command == "stop":
            controls.request_stop()

    def release(self) -> None:
        rf.release_writer_lock(self.dir)

    # ------------------------------------------------------------------ reader side
    def _remember_grid(self, step: int, image: np.ndarray) -> None:
        self._grids[step] = image
        self._grids.move_to_end(step)
        while len(self._grids) > MAX_GRIDS_IN_MEMORY:
            self._grids.popitem(last=False)

    def live_here(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def refresh(self) -> None:
        """Catch up with the folder (a run written by another process, or one loaded after a restart)."""
        if self.live_here():
            return
        with self.lock:
            status = rf.read_json(self.dir / "status.json")
            # A run this process trained keeps its own last word when the disk could not take it (disk full)
            if status and (self.thread is None or status.get("updated_at", 0) >= self.status.get("updated_at", 0)):
                self.status = status
            if self.status.get("status") == QUEUED and not rf.writer_alive(self.dir):
                self.status["status"] = "cancelled"
                self.status["message"] = "it waited in the queue of a server that has stopped; start it again " \
                                         "from Train (its config is saved)"
                with contextlib.suppress(OSError):
                    rf.atomic_write(self.dir / "status.json", json.dumps(self.status, indent=1))
            if self.status.get("status") in LIVE_STATUSES and not rf.writer_alive(self.dir):
                self.status["status"] = "interrupted"
                self.status["message"] = "the process training this run ended unexpectedly; press Resume to continue " \
                                         "from the last checkpoint"
                with contextlib.suppress(OSError):  # reading never fails because the disk is full or read-only
                    rf.atomic_write(self.dir / "status.json", json.dumps(self.status, indent=1))
            self._tail_metrics()
            self._rescan_samples()

    def _tail_metrics(self) -> None:
        path = self.dir / "metrics.csv"
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size < self._csv_pos:  # rewritten (a resume truncated it): start over
            self._csv_pos, self.rows = 0, []
        if size == self._csv_pos:
            return
        with open(path, "rb") as f:
            f.seek(self._csv_pos)
            chunk = f.read(size - self._csv_pos)
        end = chunk.rfind(b"\n") + 1  # only whole lines; a half-written row waits for the next refresh
        text = chunk[:end].decode(errors="replace")
        if self._csv_pos == 0 and text:
            first, _, text = text.partition("\n")
            self._csv_header = first.split(",")
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
            image = rf.load_png(path)
        except (OSError, ValueError):
            return None
        with self.lock:
            self._remember_grid(step, image)
        return image

    def summary(self) -> dict:
        with self.lock:
            s, c = dict(self.status), self.config
        return {"run_id": self.run_id, "name": c.get("name") or "", "status": s.get("status", "unknown"),
                "step": int(s.get("step", 0)), "total_steps": int(c.get("steps", 0) or 0),
                "dataset": c.get("dataset", "?"), "arch": c.get("arch", "?"), "loss": c.get("loss", "?"),
                "preset": c.get("preset", ""), "started_at": s.get("started_at", 0.0),
                "updated_at": s.get("updated_at", 0.0), "live_here": self.live_here()}

    def snapshot(self, max_points: int = 1500) -> RunSnapshot:
        self.refresh()
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
        rate = metrics["images_per_s"].dropna()
        images_per_s = float(rate.iloc[-1]) if len(rate) else None
        progress = max(step / total if total else 0.0, elapsed / max_s if max_s else 0.0)
        eta = None
        if s.get("status") in LIVE_STATUSES:
            etas = []
            if total and step and elapsed:
                etas.append((total - step) * elapsed / step)
            if max_s:
                etas.append(max(0.0, max_s - elapsed))
            eta = min(etas) if etas else None
        latest = steps[-1] if steps else None
        cfg = RunConfig.from_saved(c)
        return RunSnapshot(
            run_id=self.run_id, status=s.get("status", "unknown"), message=s.get("message", ""), step=step,
            total_steps=total, max_seconds=max_s, elapsed=elapsed, progress=min(1.0, progress),
            images_per_s=images_per_s, eta_seconds=eta, config=cfg,
            score_kind=cfg.loss_info.scores, metrics=metrics, grid_steps=steps,
            latest_grid=self.grid(latest) if latest is not None else None, latest_grid_step=latest,
            events=events, device=s.get("device", ""), checkpoints=[p.name for p in rf.list_checkpoints(self.dir)],
            live_here=self.live_here(), run_dir=str(self.dir), precision=s.get("precision", ""), extra={"eval": self.evaluation()})

    def evaluation(self) -> dict | None:
        """The latest quality evaluation (eval.json, see live_eval.py), None before the first one."""
        return rf.read_json(self.dir / rf.EVAL_FILE)


class RunStore:
    """All runs under one folder. One per server process (the dashboard caches it); safe from any thread."""

    def __init__(self, root: str | os.PathLike = "runs", max_runs: int | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # a queued run started, failed or was cancelled
        self._records: dict[str, RunRecord] = {}
        self._active: set[str] = set()  # runs holding a training slot (building or training in this process)
        self._queue: list[str] = []  # queued run ids, first to start first
        self._closing = False
        self.max_runs = max_runs  # None: no limit

    # ------------------------------------------------------------------ lookup
    def run_dir(self, run_id: str) -> Path:
        """The folder of `run_id`, refusing anything that could point outside the runs folder."""
        if not rf.is_valid_run_id(run_id):
            raise KeyError(f"invalid run id {run_id!r}")
        path = (self.root / run_id).resolve()
        if path.parent != self.root:
            raise KeyError(f"invalid run id {run_id!r}")
        return path

    def _record(self, run_id: str) -> RunRecord:
        with self._lock:
            rec = self._records.get(run_id)
            if rec is None:
                path = self.run_dir(run_id)
                if not (path / "config.json").is_file():
                    raise KeyError(f"no run {run_id!r} in {self.root}")
                rec = self._records[run_id] = RunRecord(run_id, path)
            return rec

    def _scan(self) -> None:
        for path in self.root.iterdir():
            if path.name not in self._records and rf.is_valid_run_id(path.name) and (path / "config.json").is_file():
                with self._lock:
                    self._records.setdefault(path.name, RunRecord(path.name, path))

    def runs(self) -> list[dict]:
        """Every run in the folder, newest first."""
        self._scan()
        with self._lock:
            records = list(self._records.values())
        out = []
        for rec in records:
            rec.refresh()
            out.append(rec.summary())
        return sorted(out, key=lambda r: (r["started_at"] or 0, r["run_id"]), reverse=True)

    def snapshot(self, run_id: str, max_points: int = 1500) -> RunSnapshot:
        return self._record(run_id).snapshot(max_points)

    def grid(self, run_id: str, step: int) -> np.ndarray | None:
        return self._record(run_id).grid(step)

    def evaluation(self, run_id: str) -> dict | None:
        return self._record(run_id).evaluation()

    def checkpoints(self, run_id: str) -> list[Path]:
        return rf.list_checkpoints(self._record(run_id).dir)

    def grid_png(self, run_id: str, step: int) -> bytes:
        """The saved sample grid of `step` as PNG bytes (for downloads)."""
        return rf.grid_path(self._record(run_id).dir, step).read_bytes()

    def metrics_csv(self, run_id: str) -> bytes:
        return (self._record(run_id).dir / "metrics.csv").read_bytes()

    def config(self, run_id: str) -> RunConfig:
        return RunConfig.from_dict(self._record(run_id).config)

    # ------------------------------------------------------------------ commands
    def start(self, config: RunConfig | dict, hooks=()) -> str:
        """Validate, load data, build models, then create the run folder and start its thread.

        `hooks` go into trainer.hooks before the thread starts, so a test's hook sees every iteration.
        Anything wrong raises before a folder or a thread exists (ConfigError, DatasetError, ValueError)."""
        from .tasks import make_trainer
        cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
        cfg.validate()
        trainer = make_trainer(cfg)
        trainer.hooks.extend(hooks)
        with self._lock:
            queued = self._full() or bool(self._queue)  # a new Start never overtakes the runs already waiting
            run_id = rf.new_run_id(self.root, cfg.name or f"{cfg.arch}-{cfg.loss}-{cfg.dataset}")
            run_dir = self.root / run_id
            run_dir.mkdir()
            try:
                (run_dir / "samples").mkdir()
                (run_dir / "checkpoints").mkdir()
                rf.acquire_writer_lock(run_dir)
                rf.atomic_write(run_dir / "config.json", cfg.to_json())
                (run_dir / "metrics.csv").write_text(",".join(rf.METRIC_COLUMNS) + "\n")
                rec = RunRecord(run_id, run_dir)
                rec.set_status(status=QUEUED if queued else "starting", step=0, elapsed=0.0, message="",
                               started_at=time.time(), pid=os.getpid(), host=rf.HOST,
                               device=device_label(trainer.device), precision=trainer.precision.label)
            except BaseException:  # a full or read-only disk: no half-made run folder left behind
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
            self._records[run_id] = rec
            if queued:
                self._queue.append(run_id)
                rec.note(f"queued: {len(self._active)} runs are training, the server's limit is {self.max_runs}")
                rec.hooks = list(hooks)
            else:
                self._launch(rec, trainer)
        return run_id

    def _launch(self, rec: RunRecord, trainer) -> None:
        """Start the run's thread (called holding self._lock); it gives its slot to the queue when it ends."""
        trainer.record, rec.trainer = rec, trainer
        rec._csv_pos = (rec.dir / "metrics.csv").stat().st_size
        self._active.add(rec.run_id)
        rec.thread = threading.Thread(target=self._train, args=(rec, trainer), name=f"gan-train-{rec.run_id}",
                                      daemon=True)
        rec.thread.start()
        self._changed.notify_all()

    def _train(self, rec: RunRecord, trainer) -> None:
        try:
            trainer.run()
        finally:
            with self._lock:
                self._active.discard(rec.run_id)
            self._start_queued()

    # ------------------------------------------------------------------ the queue (a fair server)
    def _full(self) -> bool:
        return self.max_runs is not None and len(self._active) >= self.max_runs

    def set_max_runs(self, max_runs: int | None) -> None:
        """Change the concurrent-run limit (None: no limit); a higher limit starts waiting runs at once."""
        with self._lock:
            self.max_runs = None if max_runs is None else max(1, int(max_runs))
        self._start_queued()

    def _start_queued(self) -> None:
        """Start waiting runs, in order, while slots are free. Runs on whichever thread freed the slot."""
        from .trainer import Trainer
        while True:
            with self._lock:
                if self._closing or not self._queue or self._full():
                    return
                run_id = self._queue.pop(0)
                rec = self._records[run_id]
                self._active.add(run_id)  # the slot is taken while its data loads, outside the lock
            try:
                trainer = Trainer(RunConfig.from_dict(rec.config).validate())
                trainer.hooks.extend(rec.hooks)
            except Exception as e:  # the data went away since it was queued, or memory ran out
                with self._lock:
                    self._active.discard(run_id)
                    self._changed.notify_all()
                with contextlib.suppress(OSError):
                    rec.set_status(status="failed", message=f"could not start after waiting: {e}")
                rec.release()
                continue
            with self._lock:
                if self._closing:
                    self._active.discard(run_id)
                    self._changed.notify_all()
                    return
                rec.note("a training slot freed: starting")
                rec.set_status(status="starting", started_at=time.time(), device=device_label(trainer.device))
                self._launch(rec, trainer)

    def queue(self) -> list[dict]:
        """The waiting runs in order: run_id, name, position (1 = next) and waits_for (the run whose end frees
        its slot, by expected finishing order, or None when that cannot be told)."""
        with self._lock:
            waiting, active = list(self._queue), [self._records[r] for r in self._active if r in self._records]
        finishing = [r.run_id for r in sorted(active, key=_seconds_left)] + waiting
        out = []
        for i, run_id in enumerate(waiting):
            rec = self._records.get(run_id)
            name = (rec.config.get("name") if rec else "") or run_id
            out.append({"run_id": run_id, "name": name, "position": i + 1,
                        "waits_for": finishing[i] if i < len(finishing) and finishing[i] != run_id else None})
        return out

    def cancel(self, run_id: str) -> None:
        """Take a waiting run out of the queue and delete its folder (it has trained nothing)."""
        with self._lock:
            if run_id not in self._queue:
                raise KeyError(f"run {run_id} is not waiting in the queue")
            self._queue.remove(run_id)
            rec = self._records.pop(run_id)
            rec.release()
            shutil.rmtree(rec.dir, ignore_errors=True)
            self._changed.notify_all()

    def _refuse_queued(self, run_id: str, what: str) -> None:
        with self._lock:
            if run_id in self._queue:
                raise KeyError(f"run {run_id} is waiting in the queue and cannot {what}; cancel it instead")

    def pause(self, run_id: str) -> None:
        self._refuse_queued(run_id, "pause")
        rec = self._record(run_id)
        if rec.live_here():
            rec.trainer.request_pause()
        else:
            self._send(rec, "pause")

    def stop(self, run_id: str) -> None:
        """Stop a training run; a waiting one leaves the queue."""
        with self._lock:
            if run_id in self._queue:
                self.cancel(run_id)
                return
        rec = self._record(run_id)
        if rec.live_here():
            rec.trainer.request_stop()
        else:
            self._send(rec, "stop")

    def resume(self, run_id: str) -> str:
        """Unpause a paused run, or continue a stopped/interrupted/finished one from its last checkpoint
        (same step count, curves and fixed noise). Returns the run's status afterwards."""
        self._refuse_queued(run_id, "resume")
        rec = self._record(run_id)
        if rec.live_here():
            rec.trainer.request_resume()
            return "running"
        rec.refresh()
        if rec.status.get("status") in LIVE_STATUSES and rf.writer_alive(rec.dir):
            self._send(rec, "resume")
            return "running"
        self.continue_run(run_id)
        return "running"

    @torch_threads(1)  # the checkpoint is read on the caller's thread: no OpenMP pool left there (threads.py)
    def continue_run(self, run_id: str, **changes) -> None:
        """Restart training from the newest checkpoint; `changes` (e.g. steps=...) extend or adjust the config."""
        from .checkpoint import CheckpointError
        from .tasks import make_trainer
        rec = self._record(run_id)
        with self._lock:
            if rec.live_here():
                raise rf.RunBusy(f"run {run_id} is already training")
            if self._full() or self._queue:
                raise rf.RunBusy(f"{len(self._active)} runs are training, this server's limit, and "
                                 f"{len(self._queue)} wait; resume this one when one of them finishes")
            held = rf.read_json(rec.dir / "writer.lock") or {}
            if held.get("pid") != os.getpid() and rf.writer_alive(rec.dir):  # another process (a CLI, a torchrun rank 0)
                raise rf.RunBusy(f"run {run_id} is already being trained by process {held.get('pid')} on "
                                 f"{held.get('host', rf.HOST)}; pause or stop it there")
            ckpts = rf.list_checkpoints(rec.dir)
            if not ckpts:
                raise CheckpointError(f"run {run_id} has no checkpoint to resume from")
            cfg = RunConfig.from_dict({**rec.config, **changes}).validate()
            trainer = make_trainer(cfg)
            trainer.resume_from(ckpts[-1])
            if trainer.done():
                raise ConfigError({"steps": f"run {run_id} already reached its end at step {trainer.step}; "
                                            f"raise steps or max_seconds to train further"})
            rf.acquire_writer_lock(rec.dir)
            try:
                rf.remove_temp_files(rec.dir)
                rf.atomic_write(rec.dir / "config.json", cfg.to_json())
                rf.truncate_metrics(rec.dir / "metrics.csv", trainer.step)
                for step in rf.list_grid_steps(rec.dir):
                    if step > trainer.step:
                        rf.grid_path(rec.dir, step).unlink(missing_ok=True)
                with rec.lock:
                    rec.config = cfg.to_dict()
                    rec._grid_steps = rf.list_grid_steps(rec.dir)
                    rec._grids.clear()
                    rec._csv_pos = 0
                    rec.rows = []
                    rec._tail_metrics()
                trainer.notes.insert(0, f"resumed from {ckpts[-1].name} at step {trainer.step}")
                rec.set_status(status="starting", step=trainer.step, elapsed=trainer.elapsed, message="",
                               pid=os.getpid(), host=rf.HOST, device=device_label(trainer.device),
                               precision=trainer.precision.label)
            except BaseException:  # e.g. a full disk: the run stays resumable later, not locked by this process
                rec.release()
                raise
            self._launch(rec, trainer)

    def _send(self, rec: RunRecord, command: str) -> None:
        if not rf.writer_alive(rec.dir):
            raise KeyError(f"run {rec.run_id} is not training (status {rec.status.get('status')})")
        rf.atomic_write(rec.dir / "control.json", json.dumps({"command": command, "at": time.time()}))

    # ------------------------------------------------------------------ threads
    def wait(self, run_id: str, timeout: float | None = None) -> str:
        """Block until the run's thread ends (or timeout), through its time in the queue; returns its status."""
        rec = self._record(run_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._changed.wait_for(lambda: rec.thread is not None or (run_id not in self._queue
                                                                       and run_id not in self._active), timeout)
        if rec.thread is not None:
            rec.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return rec.status.get("status", "unknown")

    def wait_started(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until a queued run has left the queue (started, failed or cancelled); True if it did."""
        with self._changed:
            return self._changed.wait_for(lambda: run_id not in self._queue and run_id not in self._active
                                          or self._records.get(run_id) is None
                                          or self._records[run_id].thread is not None, timeout)

    def live_runs(self) -> list[str]:
        with self._lock:
            return [rid for rid, rec in self._records.items() if rec.live_here()]

    def trainer(self, run_id: str):
        """The live Trainer object of a run trained in this process (for tests and benchmarks), else None."""
        rec = self._record(run_id)
        return rec.trainer if rec.live_here() else None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run this process trains and wait for their threads; waiting runs stay queued on disk
        (the next server shows them as cancelled)."""
        with self._lock:
            self._closing = True
            for run_id in self._queue:
                self._records[run_id].release()
            self._queue.clear()
            records = [r for r in self._records.values() if r.live_here()]
        for rec in records:
            rec.trainer.request_stop()
        for rec in records:
            rec.thread.join(timeout)


def _seconds_left(rec: RunRecord) -> float:
    """A training run's expected remaining seconds from its status (steps or max_seconds), inf when unknown."""
    with rec.lock:
        s, c = dict(rec.status), rec.config
    step, total, elapsed = int(s.get("step", 0)), int(c.get("steps", 0) or 0), float(s.get("elapsed", 0.0))
    left = [max(0.0, float(c.get("max_seconds") or 0) - elapsed)] if c.get("max_seconds") else []
    if total and step and elapsed:
        left.append((total - step) * elapsed / step)
    return min(left) if left else float("inf")
