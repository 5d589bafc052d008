"""RunStore: the one source of truth the dashboard reads. Thread-safe, bounded in memory, persisted to disk.

Trainer threads write into a RunRecord; pages call `snapshot()`. Runs written by another process (the CLI,
a previous server) are read from their folder, so they appear too, and are controllable via control.json.

With `workers` set ("auto" or a number) a new run trains in a child process (child.py); None trains it on a thread.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..config import ConfigError, RunConfig
from ..engine.budget import check_model_budget
from ..engine.device import device_label
from ..engine.threads import torch_threads
from . import files as rf
from . import tracking
from .child import RunNotStarted, spawn_training  # noqa: F401 (RunNotStarted: what start() raises)
from .handle import RunHandle
from .record import LIVE_STATUSES, QUEUED, RunRecord, RunSnapshot, seconds_left

FOREIGN_POLL_S = 0.25  # how often wait() re-reads the status of a run another process trains
MAX_RECORDS = 2000  # runs remembered (status + config, a few kB each); least recently used forgotten first
MAX_DETAILED = 12  # runs whose curves and grids stay in memory (up to ~10 MB each); others reload from disk
def run_label(cfg: RunConfig) -> str:
    """A run folder's readable part: what it learns (a restorer names its task), with which net, loss and data."""
    task = "" if cfg.task == "generate" else f"{cfg.task}-"
    return f"{task}{cfg.arch}-{cfg.loss}-{cfg.dataset}"


class RunStore:
    """All runs under one folder. One per server process (the dashboard caches it); safe from any thread.
    `workers`: None trains each run on a thread of this process (tests and tools reach its trainer); "auto" or a
    number trains a plain new run in a child process with `train --workers <that>` (child.py)."""

    def __init__(self, root: str | os.PathLike = "runs", max_runs: int | None = None,
                 workers: int | str | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # a queued run started, failed or was cancelled
        self._records: OrderedDict[str, RunRecord] = OrderedDict()  # least recently used first
        self._detailed: OrderedDict[str, None] = OrderedDict()  # runs whose curves/grids are in memory
        self._active: set[str] = set()  # runs holding a training slot (building or training in this process)
        self._queue: list[str] = []  # queued run ids, first to start first
        self._closing = False
        self.max_runs = max_runs  # None: no limit
        self.workers = None if workers is None else str(workers)
        self._children: dict[str, subprocess.Popen] = {}  # runs training in a child process, by run id

    # ------------------------------------------------------------------ lookup
    def run_dir(self, run_id: str) -> Path:
        """The folder of `run_id`, refusing anything that could point outside the runs folder."""
        if not rf.is_valid_run_id(run_id):
            raise KeyError(f"invalid run id {run_id!r}")
        path = (self.root / run_id).resolve()
        if path.parent != self.root:
            raise KeyError(f"invalid run id {run_id!r}")
        return path

    @staticmethod
    def _is_run_folder(path: Path) -> bool:
        return rf.is_valid_run_id(path.name) and not path.is_symlink() and path.is_dir() and \
            (path / "config.json").exists()

    def _record(self, run_id: str) -> RunRecord:
        with self._lock:
            rec = self._records.get(run_id)
            if rec is not None and not self._pinned(run_id) and not rec.dir.is_dir():  # its folder was deleted
                self._forget(run_id)
                rec = None
            if rec is None:
                path = self.run_dir(run_id)
                if not self._is_run_folder(path):
                    raise KeyError(f"no run {run_id!r} in {self.root}")
                rec = self._records[run_id] = RunRecord(run_id, path)
            self._records.move_to_end(run_id)
            self._evict()
            return rec

    def _pinned(self, run_id: str) -> bool:
        """A run this process trains, trained, or has queued: its record holds state the disk may not."""
        rec = self._records.get(run_id)
        return (rec is not None and rec.thread is not None) or run_id in self._active or run_id in self._queue

    def _forget(self, run_id: str) -> None:
        self._records.pop(run_id, None)
        self._detailed.pop(run_id, None)

    def _evict(self) -> None:
        """Forget the least recently used runs beyond MAX_RECORDS, and the curves/grids of all but the
        MAX_DETAILED most recently viewed; never a run this process is training."""
        for run_id in list(self._records)[:max(0, len(self._records) - MAX_RECORDS)]:
            if not self._pinned(run_id):
                self._forget(run_id)
        for run_id in list(self._detailed)[:max(0, len(self._detailed) - MAX_DETAILED)]:
            rec = self._records.get(run_id)
            if rec is None or not rec.live_here():
                self._detailed.pop(run_id)
                if rec is not None:
                    rec.forget_details()

    def _scan(self) -> list[RunRecord]:
        """The records of every run folder there is now; records of deleted folders are dropped."""
        try:
            names = {p.name for p in self.root.iterdir() if self._is_run_folder(p)}
        except OSError:
            names = set()
        with self._lock:
            for run_id in [r for r in self._records if r not in names and not self._pinned(r)]:
                self._forget(run_id)
            for name in names - set(self._records):
                self._records[name] = RunRecord(name, self.root / name)
                self._records.move_to_end(name, last=False)  # listed, not viewed: first to go
            listed = [rec for rec in self._records.values() if rec.run_id in names or rec.live_here()]
            self._evict()
            return listed

    def runs(self) -> list[dict]:
        """Every run in the folder, newest first. A run whose files cannot be used is listed with status
        "unreadable" and a message saying why; it never hides the others."""
        out = []
        for rec in self._scan():
            try:
                rec.refresh(details=False)
                out.append(rec.summary())
            except Exception as e:  # anything else a hostile folder finds: this run only
                rec.problem = rf.one_line(f"{type(e).__name__}: {e}")[:300]
                out.append(rec.summary())
        return sorted(out, key=lambda r: (r["started_at"] or 0, r["run_id"]), reverse=True)

    def snapshot(self, run_id: str, max_points: int = 1500) -> RunSnapshot:
        rec = self._record(run_id)
        with self._lock:
            self._detailed[run_id] = None
            self._detailed.move_to_end(run_id)
            self._evict()
        try:
            return rec.snapshot(max_points)
        except Exception as e:  # a run file no check foresaw: this run shows as unreadable, the page lives on
            rec.problem = rf.one_line(f"{type(e).__name__}: {e}")[:300]
            return rec.snapshot(max_points)

    def read_file(self, run_id: str, relative: str, max_bytes: int = 2 * 1024 ** 3) -> bytes:
        """A run file for a download (e.g. "metrics.csv", "samples/step_00000200.png"): regular files inside the
        run folder only; UnsafeFile (a ValueError) for a link or device put there."""
        return self._record(run_id).read_file(relative, max_bytes)

    def grid(self, run_id: str, step: int) -> np.ndarray | None:
        return self._record(run_id).grid(step)

    def evaluation(self, run_id: str) -> dict | None:
        return self._record(run_id).evaluation()

    def handle(self, run_id: str) -> RunHandle:
        """The run `run_id` as one object (folder, checkpoints, generator, config, status): what pages ask."""
        self._record(run_id)  # KeyError for a run that is not there
        return RunHandle(self.run_dir(run_id), status=lambda: self.snapshot(run_id, max_points=1).status)

    def checkpoints(self, run_id: str) -> list[Path]:
        return rf.list_checkpoints(self._record(run_id).dir)

    def grid_png(self, run_id: str, step: int) -> bytes:
        """The saved sample grid of `step` as PNG bytes (for downloads; never a link planted in the folder)."""
        return self.read_file(run_id, f"samples/{rf.grid_path(Path(), step).name}")

    def metrics_csv(self, run_id: str) -> bytes:
        return self.read_file(run_id, "metrics.csv")

    def config(self, run_id: str) -> RunConfig:
        rec = self._record(run_id)
        if rec.problem:
            raise ConfigError({"run": f"run {run_id} is unreadable: {rec.problem}"})
        return RunConfig.from_dict(rec.config)

    # ------------------------------------------------------------------ commands
    def start(self, config: RunConfig | dict, hooks=(), prepare=None, extra_files: dict | None = None) -> str:
        """Validate, load data, build models, then create the run folder and start its thread.

        `hooks` go into trainer.hooks before the thread starts, so a test's hook sees every iteration. `prepare`
        (trainer) runs before the folder exists (a fork loads its parent's checkpoint there); `extra_files`
        ({name: text}) are written into the new folder (a fork's fork.json).
        Anything wrong raises before a folder or a thread exists (ConfigError, DatasetError, ValueError)."""
        cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
        cfg.validate()
        check_model_budget(cfg)  # before a single weight is allocated (or the engine is even imported)
        if self.workers is not None and not hooks and prepare is None and not extra_files:
            with self._lock:
                waits = self._full() or bool(self._queue)
            if not waits:  # a run that would wait queues here, on a thread, as before
                return self._start_child(cfg)
        from .trainers import make_trainer  # imported on first use: listing runs never loads the engine
        trainer = make_trainer(cfg)
        trainer.hooks.extend(hooks)
        if prepare is not None:
            prepare(trainer)
        with self._lock:
            queued = self._full() or bool(self._queue)  # a new Start never overtakes the runs already waiting
            run_id = rf.new_run_id(self.root, cfg.name or run_label(cfg))
            run_dir = self.root / run_id
            run_dir.mkdir()
            try:
                (run_dir / "samples").mkdir()
                (run_dir / "checkpoints").mkdir()
                rf.acquire_writer_lock(run_dir)
                rf.atomic_write(run_dir / "config.json", cfg.to_json(), run_dir)
                for name, text in (extra_files or {}).items():
                    rf.atomic_write(run_dir / name, text, run_dir)
                rf.atomic_write(run_dir / "metrics.csv", ",".join(rf.METRIC_COLUMNS) + "\n", run_dir)
                rec = RunRecord(run_id, run_dir)
                rec.set_status(status=QUEUED if queued else "starting", step=trainer.step, elapsed=trainer.elapsed,
                               message="", started_at=time.time(), pid=os.getpid(), host=rf.HOST,
                               device=device_label(trainer.device), precision=trainer.precision.label)
            except BaseException:  # a full or read-only disk: no half-made run folder left behind
                rf.release_writer_lock(run_dir)
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

    def _start_child(self, cfg: RunConfig | None = None, resume: str | None = None) -> str:
        """Train `cfg`, or go on with the run `resume`, in a child `python -m gan_core train --workers ...`; returns
        its run id once the child trains. Whatever the child refuses (missing data, a model over budget, a run
        already at its end) is raised as its one line."""
        run_id, proc = spawn_training(self.root, self.workers, cfg, resume)
        with self._lock:
            self._records[run_id] = RunRecord(run_id, self.root / run_id)
            self._children[run_id] = proc
            self._active.add(run_id)
            self._changed.notify_all()
        threading.Thread(target=self._follow_child, args=(run_id, proc), name=f"gan-child-{run_id}", daemon=True).start()
        return run_id

    def _follow_child(self, run_id: str, proc: subprocess.Popen) -> None:
        """Drain the child's output (a full pipe would stall it) until it ends; then its slot is free."""
        try:
            proc.communicate()
        finally:
            with self._lock:
                self._active.discard(run_id)
                self._children.pop(run_id, None)
                self._changed.notify_all()
            self._start_queued()

    def _launch(self, rec: RunRecord, trainer) -> None:
        """Start the run's thread (called holding self._lock); it gives its slot to the queue when it ends."""
        trainer.record, rec.trainer = rec, trainer
        rec.tracker = tracking.open_tracker(trainer.run_cfg.to_dict(), rec.dir, trainer.step,
                                            rec.status.get("started_at") or time.time(), rec.note)
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
        from .trainers import make_trainer  # the task's own trainer: a queued restorer trains as one
        while True:
            with self._lock:
                if self._closing or not self._queue or self._full():
                    return
                run_id = self._queue.pop(0)
                rec = self._records[run_id]
                self._active.add(run_id)  # the slot is taken while its data loads, outside the lock
            try:
                trainer = make_trainer(RunConfig.from_dict(rec.config).validate())
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
        finishing = [r.run_id for r in sorted(active, key=seconds_left)] + waiting
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

    def _command(self, rec: RunRecord, command: str) -> None:
        """Pause/stop/resume a training run: its trainer when it is a thread here, else through its control.json."""
        if rec.live_here():
            getattr(rec.trainer, f"request_{command}")()
        else:
            self._send(rec, command)

    def pause(self, run_id: str) -> None:
        self._refuse_queued(run_id, "pause")
        self._command(self._record(run_id), "pause")

    def stop(self, run_id: str) -> None:
        """Stop a training run; a waiting one leaves the queue."""
        with self._lock:
            if run_id in self._queue:
                self.cancel(run_id)
                return
        self._command(self._record(run_id), "stop")

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
        if self.workers is not None:  # as a new run starts: in a process of its own, not on the server's thread
            with self._lock:
                self._refuse_continuing(rec)
            self._start_child(resume=run_id)
            return "running"
        self.continue_run(run_id)
        return "running"

    def _refuse_continuing(self, rec: RunRecord) -> None:
        """Why the run `rec` cannot go on training here now, raised (called holding self._lock)."""
        if rec.live_here() or rec.run_id in self._children:
            raise rf.RunBusy(f"run {rec.run_id} is already training")
        if rec.problem:
            raise ConfigError({"run": f"run {rec.run_id} is unreadable: {rec.problem}"})
        if self._full() or self._queue:
            raise rf.RunBusy(f"{len(self._active)} runs are training, this server's limit, and "
                             f"{len(self._queue)} wait; resume this one when one of them finishes")
        if not rf.holds_writer_lock(rec.dir) and rf.writer_alive(rec.dir):  # another process (a CLI, torchrun rank 0)
            held = rf.lock_holder(rec.dir)
            raise rf.RunBusy(f"run {rec.run_id} is already being trained by process {held.get('pid', '?')} on "
                             f"{rf.one_line(str(held.get('host', rf.HOST)))[:100]}; pause or stop it there")

    @torch_threads(1)  # the checkpoint is read on the caller's thread: no OpenMP pool left there (threads.py)
    def continue_run(self, run_id: str, **changes) -> None:
        """Restart training from the newest checkpoint; `changes` (e.g. steps=...) extend or adjust the config."""
        from ..engine.checkpoint import CheckpointError
        from .trainers import make_trainer  # imported on first use: listing runs never loads the engine
        rec = self._record(run_id)
        with self._lock:
            self._refuse_continuing(rec)
            ckpts = rf.list_checkpoints(rec.dir)
            if not ckpts:
                raise CheckpointError(f"run {run_id} has no checkpoint to resume from")
            cfg = RunConfig.from_dict({**rec.config, **changes}).validate()
            check_model_budget(cfg)
            trainer = make_trainer(cfg)
            trainer.resume_from(ckpts[-1])
            if trainer.done():
                raise ConfigError({"steps": f"run {run_id} already reached its end at step {trainer.step}; "
                                            f"raise steps or max_seconds to train further"})
            rf.acquire_writer_lock(rec.dir)
            try:
                rec.rewind(trainer.step, cfg)
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
        rf.atomic_write(rec.dir / "control.json", json.dumps({"command": command, "at": time.time()}), rec.dir)

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
        # Trained by another process (a server, a CLI): its status file is the only signal there is. Returning at
        # once made callers that loop on wait(timeout=…) spin a core (benchmarks/sessions.py did, beside the run).
        while True:
            rec.refresh(details=False)
            status = rec.status.get("status", "unknown")
            left = None if deadline is None else deadline - time.monotonic()
            if status not in LIVE_STATUSES + (QUEUED,) or (left is not None and left <= 0):
                return status
            time.sleep(FOREIGN_POLL_S if left is None else min(FOREIGN_POLL_S, left))

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
            children = dict(self._children)
        for rec in records:
            rec.trainer.request_stop()
        for run_id in children:
            with contextlib.suppress(KeyError, OSError, ValueError):
                self._send(self._records[run_id], "stop")
        for rec in records:
            rec.thread.join(timeout)
        for proc in children.values():
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
