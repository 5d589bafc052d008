"""Quality metrics during training, off the training thread's critical path.

At every `eval_every`-th step the trainer only copies G's weights (the EMA copy when on) into a shadow G, a
few hundred microseconds; a worker thread at low CPU priority then generates `eval_samples` images
from fixed noise and measures them (metrics.py). If the worker is still busy, that evaluation is skipped
rather than queued, so training never waits. Finished results are merged into the next metrics.csv row and
handed to the run's sink (RunSink.save_evaluation: eval.json, the latest histogram + a short history) for the dashboard. At the end of the run
one last evaluation runs on the final weights, for the run's summary.
"""
from __future__ import annotations

import copy
import os
import sys
import threading
import time

import torch

from ..models import image_size_for
from . import metrics
from .threads import one_intra_op_thread_here

MAX_HISTORY = 200
WORKER_NICE = 10  # CPU weight ~1/10 of the trainer's: results arrive within seconds, training barely notices


def _lower_priority() -> None:
    """Nice this thread (Linux: per thread; the worker's own OpenMP threads inherit it). Not 19: there the
    worker starves on a busy machine and the "live" numbers arrive minutes late."""
    if sys.platform.startswith("linux") and WORKER_NICE:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        except OSError:
            pass


class LiveEvaluation:
    """Quality metrics of a GAN's samples while it trains (see the module's docstring)."""

    def __init__(self, cfg, gan, channels: int):
        self.cfg, self.gan, self.channels = cfg, gan, channels
        self.enabled = False
        self.evaluator = self.stats = self.shadow = None
        self.z = self.labels = None
        self.history: list[dict] = []
        self.skipped = 0
        self.latest: dict | None = None
        self._lock = threading.Lock()
        self._pending: dict = {}
        self._job = None  # (step, wall_time) for the worker
        self._wake, self._idle, self._stop = threading.Event(), threading.Event(), threading.Event()
        self._idle.set()
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ training thread
    def prepare(self, record, step: int) -> None:
        """Before the loop (at `step`): evaluator (trained at first use), real statistics, fixed noise, shadow G,
        worker. Any failure turns quality metrics off with a note; the run itself goes on."""
        cfg = self.cfg
        self.record = record
        try:
            if not metrics.supports(cfg.dataset):
                record.note(f"quality metrics are off: they need a labelled image dataset and {cfg.dataset} has no labels")
                return
            if not metrics.evaluator_path(cfg.dataset).exists():
                record.set_status(message=f"training the quality evaluator for {cfg.dataset} (first use only)")
            self.evaluator = metrics.get_evaluator(cfg.dataset, cfg.data_root, log=record.note)
            self.stats = metrics.real_stats(self.evaluator, image_size_for(cfg), self.channels, cfg.data_root)
            self.z, self.labels = metrics.eval_noise(cfg, cfg.eval_samples)
            self.z = self.z.to(self.gan.device)
            self.shadow = copy.deepcopy(self.gan.sampler).requires_grad_(False).eval()
            self.history = metrics_history(record.evaluation(), step)
            self.enabled = True
        except Exception as e:  # no data for the evaluator, unwritable cache, ...
            record.note(f"quality metrics are off: {type(e).__name__}: {e}")
            return
        finally:
            record.set_status(message="")
        self.thread = threading.Thread(target=self._work, name=f"gan-eval-{record.run_id}", daemon=True)
        self.thread.start()

    @torch.no_grad()
    def _copy_weights(self) -> None:
        src = self.gan.sampler
        torch._foreach_copy_(list(self.shadow.parameters()), list(src.parameters()))
        for b_shadow, b in zip(self.shadow.buffers(), src.buffers()):
            b_shadow.copy_(b)

    def submit(self, step: int, wall_time: float) -> bool:
        """Hand the current weights to the worker; skipped (never queued) while it is still busy."""
        if not self.enabled:
            return False
        if not self._idle.is_set():
            self.skipped += 1
            return False
        self._copy_weights()
        self._idle.clear()
        self._job = (step, wall_time)
        self._wake.set()
        return True

    def take(self) -> dict:
        """Metric columns of a finished evaluation not yet written to metrics.csv (else {})."""
        with self._lock:
            row, self._pending = self._pending, {}
        return row

    def finish(self, step: int, wall_time: float) -> dict:
        """Stop the worker, then evaluate the final weights here (the run's summary). Returns the row columns."""
        self.close()
        if not self.enabled:
            return {}
        self.take()  # a periodic result superseded by the final one
        self._copy_weights()
        try:
            self._evaluate(step, wall_time, final=True)
        except Exception as e:
            self.record.note(f"final quality evaluation failed: {type(e).__name__}: {e}")
        return self.take()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        _lower_priority()
        one_intra_op_thread_here()  # a pool here would throttle the training thread's (threads.py)
        failed = False
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            step, wall_time = self._job
            try:
                self._evaluate(step, wall_time, final=False)
            except Exception as e:  # a broken evaluation must not break training; say so once
                if not failed:
                    self.record.note(f"quality evaluation failed at step {step}: {type(e).__name__}: {e}")
                failed = True
            finally:
                self._idle.set()
        self._idle.set()

    def _evaluate(self, step: int, wall_time: float, final: bool) -> None:
        start = time.perf_counter()
        result = metrics.evaluate_generator(self.shadow, self.evaluator, self.stats, self.z, self.labels)
        self._publish(step, wall_time, result, final, time.perf_counter() - start)

    def _publish(self, step, wall_time, result: metrics.EvalResult, final: bool, seconds: float) -> None:
        entry = {"step": step, "wall_time": round(wall_time, 3), **result.row(), "histogram": result.histogram}
        self.history = [h for h in self.history if h["step"] < step] + [entry]
        if len(self.history) > MAX_HISTORY:  # keep the whole span at half the resolution
            self.history = self.history[:-1:2] + [self.history[-1]]
        data = {"step": step, "wall_time": round(wall_time, 3), "final": final, **result.to_dict(),
                "seconds": round(seconds, 3), "skipped": self.skipped, "evaluator": self.evaluator.describe(),
                "updated_at": time.time(), "history": self.history}
        self.record.save_evaluation(data)
        with self._lock:
            self._pending = result.row()
            self.latest = data


def metrics_history(old: dict | None, up_to_step: int) -> list[dict]:
    """The evaluations of a resumed run (its sink's last evaluation, or None) that happened before its checkpoint."""
    old = old or {}
    return [h for h in old.get("history", []) if isinstance(h, dict) and h.get("step", 1 << 62) <= up_to_step]
