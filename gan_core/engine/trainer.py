"""The training loop, readable top to bottom, over one GAN (gan.py): schedule, logging, control and checkpoint
cadence; the maths of an update lives in the GAN.

The loop never talks to a UI: it writes rows, grids, notes and status to a RunSink (the store's RunRecord, or a
DDP rank's RankRecord) and reads pause/stop requests from threading.Events. Metrics are accumulated on the device
and read back once every `log_every` iterations, so there is no host sync per step.
"""
from __future__ import annotations

import contextlib
import errno
import math
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torchvision.utils import make_grid

from ..config import RunConfig
from ..data import ImageBatches, PointBatches, dataset_info, load_images, load_points
from ..models import image_size_for
from . import distributed
from .checkpoint import checkpoint_interval, load_training_state, save_training_state
from .device import choose_precision, cpu_threads, resolve_device
from .gan import build_gan, grad_norm
from .live_eval import LiveEvaluation
from .pictures import points_image
from .point_metrics import point_modes
from .threads import AdaptiveThreads, IdleCores, torch_threads, training_run


class Diverged(RuntimeError):
    pass


class Controls(Protocol):
    def request_pause(self) -> None: ...
    def request_resume(self) -> None: ...
    def request_stop(self) -> None: ...


class RunSink(Protocol):
    """Everything the loop writes to: the store's RunRecord (runs/<id>/ and memory) or a DDP rank's RankRecord."""
    run_id: str
    dir: Path

    def set_status(self, **changes) -> None: ...
    def heartbeat(self, step: int, elapsed: float) -> None: ...
    def note(self, message: str) -> None: ...
    def add_metrics(self, rows: list[dict]) -> None: ...
    def add_grid(self, step: int, image: np.ndarray) -> None: ...
    def grid_steps(self) -> list[int]: ...
    def checkpoint_path(self, step: int) -> Path: ...
    def checkpoint_saved(self, step: int, path: Path) -> None: ...
    def poll_control(self, controls: Controls) -> None: ...
    def evaluation(self) -> dict | None: ...
    def save_evaluation(self, data: dict) -> None: ...
    def release(self) -> None: ...


class Trainer:
    """One run: its data, its GAN, the fixed-noise grid, and the loop."""

    build_gan = staticmethod(build_gan)  # a task hook: restorer runs build an image-to-image GAN (restore/training.py)

    @torch_threads(1)  # built on the caller's thread (the UI's, the CLI's main): no OpenMP pool left there (threads.py)
    def __init__(self, cfg: RunConfig):
        self.run_cfg = cfg  # validated at the edge (store.start / continue_run, the CLI): trusted here
        self.dist = distributed.current()  # DDP: None unless torchrun or --workers started this process
        if self.dist is not None:
            cfg = self.dist.rank_config(cfg)  # a local group: this rank's share of each batch
        self.cfg = cfg
        self.device = distributed.local_device(resolve_device(cfg.device))  # DDP: cuda:LOCAL_RANK per rank
        self.notes: list[str] = []
        rng = torch.Generator(device=self.device).manual_seed(cfg.seed)
        info = dataset_info(cfg.dataset)
        if cfg.is_2d:
            self.points = load_points(cfg.dataset)
            self.batches = PointBatches(self.points, rng, self.device)
            channels, num_classes = 0, 0
        else:
            self.points = None
            channels = cfg.channels or info.channels
            data = load_images(cfg.dataset, cfg.data_root, image_size_for(cfg), channels, self.device)
            self.notes += data.notes
            self.batches = ImageBatches(data, rng)
            num_classes = data.num_classes
        # auto: bf16 only where the hardware has it, and never for 2-D points
        self.precision = choose_precision(cfg.precision, self.device, cfg.is_2d)
        self.notes += [self.precision.note] if self.precision.note else []
        self.gan = self.build_gan(cfg, channels, num_classes, self.device, rng, self.precision.bf16)
        self._compile_unproven = False  # torch.compile really happens in the first iteration: see train_iteration
        if cfg.compile:
            note = self.gan.compile()
            self.notes += [note] if note else []
            self._compile_unproven = note is None
        # Progress and control
        self.step = 0
        self.elapsed = 0.0  # seconds spent training (pauses excluded)
        self.agreed_progress = 0.0  # DDP: rank 0's progress through its budget, its clock included, as last shared
        self.status = "ready"
        self.message = ""
        self.stop_event, self.pause_event, self._wake = threading.Event(), threading.Event(), threading.Event()
        self.hooks: list = []  # callables (trainer) run after every iteration: tests inject faults here
        self.record: RunSink | None = None
        self._acc = torch.zeros(5, device=self.device)
        self._g_step_flags = torch.tensor([0.0, 1.0], device=self.device)
        self._acc_iters = 0
        self.thread_policy: AdaptiveThreads | None = None  # set when a CPU run with `threads: 0` starts
        evaluate = cfg.eval_every and not cfg.is_2d and (self.dist is None or self.dist.is_main)
        self.evals = LiveEvaluation(cfg, self.gan, channels) if evaluate else None  # quality metrics, off-thread
        if self.dist is not None:  # DDP: per-rank noise and shard, DDP wrappers, stop/pause agreed by all ranks
            self.batches = self.dist.attach(self.gan, self.batches, self.notes)
            self.stop_event, self.pause_event = distributed.AgreedFlag(), distributed.AgreedFlag()

    # ------------------------------------------------------------------ pieces
    def _first_compiled_iteration(self) -> None:
        """torch.compile is lazy: a missing C++ compiler or Triton, or an unsupported op, only shows in the first
        forward/backward. Then the run goes on eagerly (that iteration again) with a note instead of failing."""
        self._compile_unproven = False
        try:
            self.train_iteration()
        except Exception as e:
            self.gan.uncompile()
            reason = (str(e).strip().splitlines() or [""])[0][:200]
            note = f"torch.compile failed ({type(e).__name__}: {reason}); training eagerly instead"
            self.notes.append(note)
            if self.record is not None:
                self.record.note(note)
            self.train_iteration()

    def cpu_threads(self) -> int:
        """This run's intra-op thread count on a CPU, or with `threads: 0` the most it may take (device.cpu_threads)."""
        return cpu_threads(self.cfg)

    def _use_cpu_threads(self) -> int:
        """Set this thread's intra-op thread count for a CPU run: the config's, or with `threads: 0` what the
        adaptive policy starts on (threads.py); returns the count to restore."""
        if self.device.type != "cpu":
            return 0
        before = torch.get_num_threads()
        self.thread_policy = None if self.cfg.threads else AdaptiveThreads(self.cpu_threads())
        self._idle_cores = IdleCores()
        torch.set_num_threads(self.cfg.threads or self.thread_policy.threads)
        return before

    def _adapt_threads(self, seconds: float, images: int) -> None:
        """Every probe span of training (~2 s; not every log_every steps: on a busy machine ten steps on a pool may
        take half a minute): tell the policy how the span went and follow its choice. Host clock and counts only: on a
        CPU each step has finished when Python moves on, so no sync is needed."""
        policy = self.thread_policy
        chosen = policy.chosen
        threads = policy.observe(seconds, images, self.cpu_threads(), self._idle_cores.since_last())
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        if policy.chosen != chosen and self.record is not None:
            rates = ", ".join(f"{n} thread{'s' * (n > 1)} {r:,.0f}" for n, r in sorted(policy.rates.items()))
            busy = "; no core free for more" if policy.busy_cores else ""
            self.record.note(f"CPU threads: {policy.chosen} (images/s measured: {rates}{busy})")

    def progress(self, clock: bool = True) -> float:
        """How far through its budget the run is (0..1; 0 with no budget): steps or seconds, whichever ends it
        first (seconds only with `clock`)."""
        cfg = self.cfg
        parts = []
        if cfg.steps:
            parts.append(self.step / cfg.steps)
        if cfg.max_seconds and clock:
            parts.append(self.elapsed / cfg.max_seconds)
        return min(1.0, max(parts)) if parts else 0.0

    def done(self) -> bool:
        if self.dist is not None:  # DDP: ranks end together, on rank 0's clock
            return self.dist.done(self.step, self.cfg.steps)
        return bool((self.cfg.steps and self.step >= self.cfg.steps) or
                    (self.cfg.max_seconds and self.elapsed >= self.cfg.max_seconds))

    def resume_from(self, path) -> None:
        """Continue from a checkpoint of this run (same config): weights, optimisers, noise, step and clock."""
        state = load_training_state(path, self.gan)
        self.step, self.elapsed = state.step, state.elapsed
        self.agreed_progress = self.progress()  # the same on every rank: they all load this checkpoint
        self.notes += state.notes

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> None:
        """n_critic D updates, then (every g_every-th iteration) one G update. Nothing here syncs with the host."""
        if self._compile_unproven:
            return self._first_compiled_iteration()
        cfg, gan = self.cfg, self.gan
        gan.follow_schedule(self.progress(), None if self.dist is None else max(self.progress(clock=False),
                                                                                self.agreed_progress), self.step)
        g_update = self.step % cfg.g_every == 0
        reuse_fake = g_update and cfg.n_critic == 1  # as pytorch/examples dcgan: one G forward serves both updates
        for _ in range(cfg.n_critic):
            real, y = self.batches.sample(cfg.batch_size)
            d = gan.d_step(real, y, keep_fake=reuse_fake)
        loss_g = gan.g_step(y, d.fake, real) if g_update else torch.zeros((), device=self.device)
        with torch.no_grad():
            self._acc += torch.stack([d.loss, loss_g, gan.loss.display(d.d_real).mean(),
                                      gan.loss.display(d.d_fake).mean(),
                                      self._g_step_flags[int(g_update)]])  # a device view: no host→device copy
        self._acc_iters += 1
        self.step += 1

    # ------------------------------------------------------------------ reading results
    def read_metrics(self, seconds: float, images: int) -> dict:
        """The one host sync: averages since the last read, gradient norms, rates."""
        gan = self.gan
        packed = torch.cat([self._acc, grad_norm(gan.D).reshape(1), grad_norm(gan.G).reshape(1)])
        if self.dist is not None:  # DDP: every rank's window, averaged (rank 0 writes the row)
            packed = self.dist.mean(packed)
        packed = packed.tolist()
        self._acc.zero_()
        n, n_g = max(self._acc_iters, 1), packed[4]
        self._acc_iters = 0
        return {
            "step": self.step, "wall_time": round(self.elapsed, 3),
            "d_loss": packed[0] / n, "g_loss": packed[1] / n_g if n_g else None,
            "d_real": packed[2] / n, "d_fake": packed[3] / n,
            "grad_norm_d": packed[5], "grad_norm_g": packed[6],
            "lr_d": gan.opt_d.param_groups[0]["lr"], "lr_g": gan.opt_g.param_groups[0]["lr"],
            "images_per_s": images / seconds if seconds > 0 else float("nan"),
        }

    def sample_image(self) -> np.ndarray:
        """The fixed-noise grid (images) or scatter (2-D) as uint8 HWC."""
        gan = self.gan
        x = gan.generate(gan.fixed_z, gan.fixed_y)
        if self.points is not None:
            real = self.points.sample(self.cfg.grid_size, torch.Generator(self.device).manual_seed(0)).cpu().numpy()
            return points_image(real, x.cpu().numpy(), self.points.extent)
        nrow = 10 if gan.fixed_y is not None else int(math.ceil(math.sqrt(x.shape[0])))
        grid = make_grid(x, nrow=nrow, padding=2, pad_value=-1.0)
        return grid.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Train until done or stopped. Ends with status finished / stopped / diverged / failed; never raises."""
        with training_run():  # counted while it trains: runs in one process split the cores (threads.py)
            self._run()

    def _run(self) -> None:
        if self.dist is not None:  # DDP: rank 0 writes through, other ranks write nothing; all poll control
            self.record = self.dist.begin(self.gan, self.batches, self.step, self.record)
        rec, cfg = self.record, self.cfg
        checkpoint_every = checkpoint_interval(cfg)
        images = last_images = 0
        last_time = tick = time.perf_counter()
        threads_before = self._use_cpu_threads()
        measured = self.elapsed, images  # the thread policy's span: training seconds (host clock), images
        try:
            self.status = "running"
            rec.set_status(status="running", message="")
            for note in self.notes:
                rec.note(note)
            if self.step == 0:
                rec.add_grid(0, self.sample_image())
            if self.evals is not None:
                self.evals.prepare(rec, self.step)  # the first run on a dataset trains its evaluator: not training time
                last_time = tick = time.perf_counter()
            while not self.done() and not self.stop_event.is_set():
                if self.pause_event.is_set():
                    self._pause_until_resumed()
                    last_time = tick = time.perf_counter()
                    last_images = images
                    continue
                self.train_iteration()
                images += cfg.batch_size * cfg.n_critic
                for hook in self.hooks:
                    hook(self)
                now = time.perf_counter()
                self.elapsed += now - tick
                tick = now
                step = self.step
                if self.thread_policy is not None and self.elapsed - measured[0] >= self.thread_policy.probe_seconds:
                    self._adapt_threads(self.elapsed - measured[0], images - measured[1])
                    measured = self.elapsed, images
                if self.evals is not None and step % cfg.eval_every == 0 and not self.done():  # the end has its own
                    self.evals.submit(step, self.elapsed)  # copies G's weights; a worker thread measures them
                sample_now = step % cfg.sample_every == 0
                ckpt_now = step % checkpoint_every == 0
                if step % cfg.log_every == 0 or sample_now or ckpt_now or self.done() or self.stop_event.is_set():
                    row = self.read_metrics(now - last_time, images - last_images)
                    last_time, last_images = now, images
                    if self.evals is not None:
                        row.update(self.evals.take())  # the latest finished evaluation, if any
                    if sample_now and self.points is not None:
                        row.update(point_modes(self.gan.generate(self.gan.fixed_z).cpu().numpy(), self.points))
                    rec.add_metrics([row])
                    if not row_is_finite(row):
                        raise Diverged(f"losses became NaN/Inf at step {step} (d_loss={row['d_loss']}, g_loss={row['g_loss']})")
                    rec.heartbeat(self.step, self.elapsed)
                    if sample_now:
                        rec.add_grid(step, self.sample_image())
                    if ckpt_now:
                        self._checkpoint()
                    self._poll_control()
                    now = time.perf_counter()
                    self.elapsed += now - tick  # logging, grids and checkpoints count as training time
                    tick = now
            self.status = "stopped" if self.stop_event.is_set() and not self.done() else "finished"
            self._finish()
        except Diverged as e:
            self.status, self.message = "diverged", str(e) + "; the last good checkpoint is kept"
        except OSError as e:  # a full disk or an unwritable runs folder: stop here, keep what is on disk, say why
            self.status, self.message = "failed", storage_message(e, self.step)
        except Exception as e:  # the run fails, the process lives on
            self.status, self.message = "failed", f"{type(e).__name__}: {e}"
            with contextlib.suppress(Exception):  # keep what was learned, if it is still sound
                if self.step and self.gan.params_finite():
                    self._checkpoint()
        finally:
            if threads_before:
                torch.set_num_threads(threads_before)
            if self.evals is not None:
                self.evals.close()
            with contextlib.suppress(OSError):  # still full: the record's in-memory status (set first) says why
                rec.set_status(status=self.status, message=self.message, step=self.step, elapsed=self.elapsed)
            with contextlib.suppress(OSError):
                rec.release()

    # ------------------------------------------------------------------ control (any thread may call these)
    def request_pause(self):
        self.pause_event.set()

    def request_resume(self):
        self.pause_event.clear()
        self._wake.set()

    def request_stop(self):
        self.stop_event.set()
        self._wake.set()

    def _poll_control(self) -> None:
        """Requests left in control.json; under DDP every rank then adopts rank 0's stop / pause / time-up."""
        self.record.poll_control(self)
        if self.dist is not None:
            time_up = bool(self.cfg.max_seconds and self.elapsed >= self.cfg.max_seconds)
            progress = self.dist.agree(self.stop_event, self.pause_event, time_up, self.progress())
            if self.cfg.max_seconds:  # every rank decays its rates on rank 0's clock, or their weights would part
                self.agreed_progress = progress

    def _pause_until_resumed(self):
        self.status = "paused"
        self.record.set_status(status="paused", step=self.step, elapsed=self.elapsed)
        while self.pause_event.is_set() and not self.stop_event.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._poll_control()
        self.status = "running"
        self.record.set_status(status="running")

    def _finish(self):
        """Last grid and checkpoint, whatever ended the run (unless the weights are no longer finite)."""
        if not self.gan.params_finite():
            raise Diverged(f"weights became NaN/Inf by step {self.step}")
        final = self.evals.finish(self.step, self.elapsed) if self.evals is not None else {}  # the run's summary
        if self._acc_iters:
            self.record.add_metrics([self.read_metrics(1.0, 0) | {"images_per_s": float("nan")} | final])
        elif final:  # its own row at the last step: eval columns only
            self.record.add_metrics([{"step": self.step, "wall_time": round(self.elapsed, 3), **final}])
        grids = self.record.grid_steps()
        if not grids or grids[-1] != self.step:
            self.record.add_grid(self.step, self.sample_image())
        self._checkpoint()

    def _checkpoint(self):
        if not self.gan.params_finite():
            raise Diverged(f"weights became NaN/Inf by step {self.step}")
        if self.dist is not None and not self.dist.is_main:  # DDP: only rank 0 writes checkpoints
            return
        path = self.record.checkpoint_path(self.step)
        rank_cfg, self.gan.cfg = self.gan.cfg, self.run_cfg  # the checkpoint records the run's batch, not a share
        try:
            save_training_state(path, self.gan, self.step, self.elapsed, inside=self.record.dir)  # no link followed
        finally:
            self.gan.cfg = rank_cfg
        self.record.checkpoint_saved(self.step, path)


def storage_message(e: OSError, step: int) -> str:
    """One line for a write that failed: what happened, which file, and how to carry on."""
    kind = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system",
            errno.EACCES: "runs folder not writable", errno.EPERM: "runs folder not writable"}.get(e.errno, "write failed")
    where = f" {e.filename}" if e.filename else ""
    return (f"{kind}: could not write{where} ({e.strerror or e}); training stopped at step {step}. Free some space "
            f"(or fix the folder's permissions) and press Resume to continue from the last checkpoint")


def row_is_finite(row: dict) -> bool:
    """g_loss is None for a window without a G update (g_every > log_every)."""
    return math.isfinite(row["d_loss"]) and (row["g_loss"] is None or math.isfinite(row["g_loss"]))
