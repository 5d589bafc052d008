"""One training iteration, readable top to bottom, and the stoppable loop a background thread runs.

The loop never talks to a UI: it writes rows, grids, notes and status to a run record (see store.py),
and reads pause/stop requests from threading.Events. Metrics are accumulated on the device and read
back once every `log_every` iterations, so there is no host sync per step.
"""
from __future__ import annotations

import contextlib
import copy
import errno
import math
import os
import threading
import time

import numpy as np
import torch
from torchvision.utils import make_grid

from .config import RunConfig
from .data import ImageBatches, PointBatches, dataset_info, load_images, load_points
from .health import point_modes
from . import distributed
from .live_eval import LiveEvaluation
from .threads import dashboard_in_process, torch_threads
from .losses import LOSSES, d_scores_for_display, gradient_penalty, r1_penalty
from .models import build_models, image_size_for, use_generator

FIXED_NOISE_SEED_OFFSET = 1_000_003  # fixed grid noise comes from its own stream, identical on every device


class Diverged(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA if present, else Apple MPS, else CPU. An unavailable explicit choice raises."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: CUDA was requested but no CUDA GPU is available; use `auto` or `cpu`")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device: MPS was requested but is not available here; use `auto` or `cpu`")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return {"mps": "Apple GPU (MPS)"}.get(device.type, "CPU")


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")() in ("AVX512", "AMX")) or \
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def bf16_is_slow(device: torch.device) -> bool:
    """A CPU with AVX512-BF16 but no AMX tiles: bf16 autocast measured about half fp32's speed there
    (benchmarks/throughput.py), because every cast costs more than the narrower maths saves."""
    return device.type == "cpu" and not getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()


def make_optimizer(params, cfg: RunConfig, lr: float, device: torch.device):
    """Adam as one fused kernel over all tensors where the device has it (CPU, CUDA): the fastest of fused,
    foreach and per-tensor in benchmarks/throughput.py; foreach elsewhere."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.beta1)
    impl = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), **impl)


def _uncompiled(module: torch.nn.Module) -> torch.nn.Module:
    """The eager module behind a torch.compile wrapper, also when a DDP wrapper sits around the compiled one."""
    if hasattr(module, "_orig_mod"):
        return module._orig_mod
    inner = getattr(module, "module", None)
    if inner is not None and hasattr(inner, "_orig_mod"):
        module.module = inner._orig_mod
    return module


LIGHT_MFLOPS = 10.0  # G + D forward MFLOPs per image below which a step counts as light (see cpu_threads)


def cpu_threads(cfg: RunConfig, light: bool | None = None) -> int:
    """Intra-op threads for a CPU run: the config's, else this process's share of the cores (torchrun splits them
    among its local processes), halved for light nets (`light`; default: MLPs) in a process that also serves the
    dashboard. A light step (classic-mlp 1.1, fast-mnist 4.8 MFLOP/image) is many small ops whose OpenMP barriers
    stall whenever another thread takes a core; heavy conv nets are compute-bound and gain from every core anyway.
    Measured on a 2-core CPU, 2 threads vs 1: headless with live evaluation (benchmarks/throughput.py --sections
    threads) classic-mlp 17.8k vs 13.2k images/s, fast-mnist 2.76k vs 1.63k, classic-dcgan 645 vs 334; in the
    dashboard (benchmarks/sessions.py) classic-mlp 5.1k vs 13.5k unwatched and 1.1k vs 8.6k with 5 viewers,
    classic-dcgan 381 vs 278 with 3 viewers."""
    if cfg.threads:
        return cfg.threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    share = max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if light is None:
        light = cfg.arch in ("mlp", "mlp2d")
    return max(1, share // 2) if light and dashboard_in_process() else share


@torch.no_grad()
@torch_threads(1)  # any thread may ask (threads.py)
def forward_mflops(G: torch.nn.Module, D: torch.nn.Module, z_dim: int, device) -> float:
    """MFLOPs of G then D on one image (eval mode, counted on two), to size a step's work without timing it."""
    from torch.utils.flop_counter import FlopCounterMode
    modes = G.training, D.training
    G.eval()
    D.eval()
    try:
        y = torch.zeros(2, dtype=torch.long, device=device) if G.num_classes else None
        with FlopCounterMode(display=False) as counter:
            D(G(torch.zeros(2, z_dim, device=device), y), y)
    finally:
        G.train(modes[0])
        D.train(modes[1])
    return counter.get_total_flops() / 2 / 1e6


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def points_image(real: np.ndarray, fake: np.ndarray, extent: float, size: int = 320) -> np.ndarray:
    """A scatter of real (blue) and generated (orange) 2-D points as an RGB uint8 image, for grids and GIFs. The
    view widens (up to 4×) to keep G's points in sight; light grey lines mark every unit, darker ones the axes."""
    finite = np.asarray(fake, dtype=np.float32)
    finite = finite[np.isfinite(finite).all(1)] if finite.ndim == 2 else finite
    if len(finite):
        extent = float(min(max(extent, 1.1 * np.abs(finite).max()), 4 * extent))
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    for unit in range(-int(extent), int(extent) + 1):
        px = int(round((unit + extent) / (2 * extent) * (size - 1)))
        shade = 150 if unit == 0 else 232
        img[:, px] = np.minimum(img[:, px], shade)
        img[size - 1 - px, :] = np.minimum(img[size - 1 - px, :], shade)
    for pts, colour in ((real, (120, 160, 230)), (fake, (240, 110, 20))):
        pts = np.nan_to_num(np.asarray(pts, dtype=np.float32), nan=1e9)
        px = ((pts + extent) / (2 * extent) * (size - 1)).round().astype(int)
        ok = (px >= 1).all(1) & (px < size - 1).all(1)
        cols, rows = px[ok, 0], size - 1 - px[ok, 1]
        for dr in (-1, 0, 1):
            img[rows + dr, cols] = colour
            img[rows, cols + dr] = colour
    return img


class Trainer:
    """Everything one run needs: data, G, D, optimisers, fixed noise, and the loop."""

    @torch_threads(1)  # built on the caller's thread (the UI's, the CLI's main): no OpenMP pool left there (threads.py)
    def __init__(self, cfg: RunConfig):
        self.cfg = cfg.validate()
        self.dist = distributed.current()  # DDP hook: None unless torchrun started this process (distributed.py)
        self.device = distributed.local_device(resolve_device(cfg.device))  # DDP hook: cuda:LOCAL_RANK per rank
        self.loss = LOSSES[cfg.loss]
        self.notes: list[str] = []
        self.rng = torch.Generator(device=self.device).manual_seed(cfg.seed)
        info = dataset_info(cfg.dataset)
        if cfg.is_2d:
            self.points = load_points(cfg.dataset)
            self.batches = PointBatches(self.points, self.rng, self.device)
            self.channels, self.num_classes = 0, 0
        else:
            self.points = None
            self.channels = cfg.channels or info.channels
            data = load_images(cfg.dataset, cfg.data_root, image_size_for(cfg), self.channels, self.device)
            self.notes += data.notes
            self.batches = ImageBatches(data, self.rng)
            self.num_classes = data.num_classes
        self.G, self.D = build_models(cfg, self.channels, self.num_classes)
        use_generator(self.D, self.rng)  # dropout masks from the run's own seeded stream (determinism)
        self.G.to(self.device)
        self.D.to(self.device)
        if self.device.type == "cpu" and any(isinstance(m, torch.nn.Conv2d) for m in self.D.modules()):
            for net in (self.G, self.D):  # oneDNN's own layout: no reorder around each conv (1.1× on dcgan32, dcgan28)
                net.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if cfg.ema else None
        self.opt_g = make_optimizer(self.G.parameters(), cfg, cfg.lr_g, self.device)
        self.opt_d = make_optimizer(self.D.parameters(), cfg, cfg.lr_d, self.device)
        self.bf16 = cfg.precision == "bf16"
        if self.bf16 and not bf16_supported(self.device):
            self.bf16 = False
            self.notes.append(f"bf16 is not supported on this {self.device.type}; training in fp32 instead")
        elif self.bf16 and bf16_is_slow(self.device):
            self.notes.append("bf16 on this CPU (no AMX) is usually slower than fp32; it saves memory, not time")
        self.G_fwd, self.D_fwd = self.G, self.D
        if cfg.compile:
            self._try_compile()
        fixed = torch.Generator().manual_seed(cfg.seed + FIXED_NOISE_SEED_OFFSET)
        self.fixed_z = self._noise(cfg.grid_size, fixed, "cpu").to(self.device)
        self.fixed_y = (torch.arange(cfg.grid_size) % self.num_classes).to(self.device) if self.G.num_classes else None
        # Progress and control
        self.step = 0
        self.elapsed = 0.0  # seconds spent training (pauses excluded)
        self.status = "ready"
        self.message = ""
        self.stop_event, self.pause_event, self._wake = threading.Event(), threading.Event(), threading.Event()
        self.hooks: list = []  # callables (trainer) run after every iteration: tests inject faults here
        self.record = None
        self._acc = torch.zeros(5, device=self.device)
        self._g_step_flags = torch.tensor([0.0, 1.0], device=self.device)
        # D scores real and fake in one call unless batch statistics (BatchNorm) would then mix the two batches
        self.joint_d = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        self._acc_iters = 0
        self.evals = LiveEvaluation(self) if cfg.eval_every and not cfg.is_2d else None  # quality metrics, off-thread
        distributed.attach(self)  # DDP hook: per-rank noise and shard, DDP wrappers, agreed stop/pause (else no-op)

    # ------------------------------------------------------------------ pieces
    def _noise(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        g = generator or self.rng
        device = device or self.device
        if self.cfg.noise == "uniform":
            return torch.rand(n, self.cfg.z_dim, generator=g, device=device).mul_(2).sub_(1)
        return torch.randn(n, self.cfg.z_dim, generator=g, device=device)

    def _try_compile(self):
        try:
            self.G_fwd, self.D_fwd = torch.compile(self.G), torch.compile(self.D)
            self._compile_unproven = True  # compilation really happens in the first iteration: see train_iteration
        except Exception as e:  # no compiler, unsupported platform
            self.G_fwd, self.D_fwd = self.G, self.D
            self.notes.append(f"torch.compile unavailable ({type(e).__name__}: {e}); running eagerly")

    def _first_compiled_iteration(self) -> None:
        """torch.compile is lazy: a missing C++ compiler or Triton, or an unsupported op, only shows in the first
        forward/backward. Then the run goes on eagerly (that iteration again) with a note instead of failing."""
        self._compile_unproven = False
        try:
            self.train_iteration()
        except Exception as e:
            self.G_fwd, self.D_fwd = _uncompiled(self.G_fwd), _uncompiled(self.D_fwd)
            self.D.requires_grad_(True)
            reason = (str(e).strip().splitlines() or [""])[0][:200]
            note = f"torch.compile failed ({type(e).__name__}: {reason}); training eagerly instead"
            self.notes.append(note)
            if self.record is not None:
                self.record.note(note)
            self.train_iteration()

    def cpu_threads(self) -> int:
        """This run's intra-op thread count on a CPU (see cpu_threads: light nets beside the dashboard take half)."""
        if self.cfg.threads or not dashboard_in_process():
            return cpu_threads(self.cfg)
        return cpu_threads(self.cfg, forward_mflops(self.G, self.D, self.cfg.z_dim, self.device) < LIGHT_MFLOPS)

    def _use_cpu_threads(self) -> int:
        """Set this thread's intra-op thread count for a CPU run (see cpu_threads); returns the count to restore."""
        if self.device.type != "cpu":
            return 0
        before = torch.get_num_threads()
        torch.set_num_threads(self.cpu_threads())
        return before

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _instance_noise(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.cfg.instance_noise * max(0.0, 1.0 - self.progress())
        if sigma <= 0:
            return x
        return x + sigma * torch.randn(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)

    def progress(self) -> float:
        cfg = self.cfg
        parts = []
        if cfg.steps:
            parts.append(self.step / cfg.steps)
        if cfg.max_seconds:
            parts.append(self.elapsed / cfg.max_seconds)
        return min(1.0, max(parts)) if parts else 0.0

    def done(self) -> bool:
        if self.dist is not None:  # DDP hook: ranks end together, on rank 0's clock
            return self.dist.done(self)
        return (self.cfg.steps and self.step >= self.cfg.steps) or \
            (self.cfg.max_seconds and self.elapsed >= self.cfg.max_seconds)

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> None:
        """n_critic D updates, then (every g_every-th iteration) one G update. Nothing here syncs with the host."""
        if getattr(self, "_compile_unproven", False):
            return self._first_compiled_iteration()
        cfg, G, D, loss = self.cfg, self.G_fwd, self.D_fwd, self.loss
        g_step = self.step % cfg.g_every == 0
        reuse_fake = g_step and cfg.n_critic == 1  # as pytorch/examples dcgan: one G forward serves both updates
        for k in range(cfg.n_critic):
            real, y = self.batches.sample(cfg.batch_size)
            z = self._noise(cfg.batch_size)
            with self._autocast():
                if reuse_fake:
                    fake = G(z, y)
                else:
                    with torch.no_grad():
                        fake = G(z, y)
                real_in = self._instance_noise(real)
                if cfg.r1_gamma:
                    real_in.requires_grad_(True)
                fake_in = self._instance_noise(fake.detach())
                if self.joint_d:  # one D call over [real; fake]: the same maths, bigger matmuls, no gradient adds
                    both = D(torch.cat([real_in, fake_in.to(real_in.dtype)]), None if y is None else torch.cat([y, y]))
                    d_real, d_fake = both.float().split(real_in.shape[0])
                else:
                    d_real = D(real_in, y).float()
                    d_fake = D(fake_in, y).float()
                loss_d = loss.d(d_real, d_fake, 1.0 - cfg.label_smoothing)
                if loss.gradient_penalty:
                    loss_d = loss_d + cfg.gp_lambda * gradient_penalty(D, real, fake.detach().to(real.dtype), y, self.rng)
                if cfg.r1_gamma:
                    loss_d = loss_d + 0.5 * cfg.r1_gamma * r1_penalty(d_real, real_in)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.D.parameters(), cfg.grad_clip, foreach=True)
            self.opt_d.step()
            if loss.clip_weights:
                with torch.no_grad():
                    torch._foreach_clamp_min_(list(self.D.parameters()), -cfg.clip_value)
                    torch._foreach_clamp_max_(list(self.D.parameters()), cfg.clip_value)

        loss_g = torch.zeros((), device=self.device)
        if g_step:
            self.D.requires_grad_(False)  # G's update needs D's input gradient only, not D's weight gradients
            with self._autocast():
                if not reuse_fake:
                    fake = G(self._noise(cfg.batch_size), y)
                loss_g = loss.g(D(self._instance_noise(fake), y).float())
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.G.parameters(), cfg.grad_clip, foreach=True)
            self.opt_g.step()
            self.D.requires_grad_(True)
            if self.G_ema is not None:
                self._update_ema()

        with torch.no_grad():
            self._acc += torch.stack([loss_d.detach(), loss_g.detach(),
                                      d_scores_for_display(d_real.detach(), cfg.loss).mean(),
                                      d_scores_for_display(d_fake.detach(), cfg.loss).mean(),
                                      self._g_step_flags[int(g_step)]])  # a device view: no host→device copy
        self._acc_iters += 1
        self.step += 1

    @torch.no_grad()
    def _update_ema(self):
        ema_p, p = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema_p, p, 1.0 - self.cfg.ema)
        for eb, b in zip(self.G_ema.buffers(), self.G.buffers()):
            eb.copy_(b)

    # ------------------------------------------------------------------ reading results
    def read_metrics(self, seconds: float, images: int) -> dict:
        """The one host sync: averages since the last read, gradient norms, rates."""
        packed = torch.cat([self._acc, grad_norm(self.D).reshape(1), grad_norm(self.G).reshape(1)])
        if self.dist is not None:  # DDP hook: every rank's window, averaged (rank 0 writes the row)
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
            "lr_d": self.opt_d.param_groups[0]["lr"], "lr_g": self.opt_g.param_groups[0]["lr"],
            "images_per_s": images / seconds if seconds > 0 else float("nan"),
        }

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Samples in [-1, 1] (EMA weights when enabled), G in eval mode so BatchNorm uses running stats."""
        net = self.G_ema if self.G_ema is not None else self.G
        was_training = net.training
        net.eval()
        try:
            with self._autocast():
                return net(z.to(self.device), None if y is None else y.to(self.device)).float()
        finally:
            net.train(was_training)

    def sample_image(self) -> np.ndarray:
        """The fixed-noise grid (images) or scatter (2-D) as uint8 HWC."""
        x = self.generate(self.fixed_z, self.fixed_y)
        if self.points is not None:
            real = self.points.sample(self.cfg.grid_size, torch.Generator(self.device).manual_seed(0)).cpu().numpy()
            return points_image(real, x.cpu().numpy(), self.points.extent)
        nrow = 10 if self.fixed_y is not None else int(math.ceil(math.sqrt(x.shape[0])))
        grid = make_grid(x, nrow=nrow, padding=2, pad_value=-1.0)
        return grid.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    def params_finite(self) -> bool:
        return bool(torch.stack([p.isfinite().all() for p in self.G.parameters()] +
                                [p.isfinite().all() for p in self.D.parameters()]).all())

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Train until done or stopped. Ends with status finished / stopped / diverged / failed; never raises."""
        if self.dist is not None:  # DDP hook: rank 0 writes through, other ranks write nothing; all poll control
            self.record = self.dist.begin(self)
        rec, cfg = self.record, self.cfg
        images = last_images = 0
        last_time = tick = time.perf_counter()
        threads_before = self._use_cpu_threads()
        try:
            self.status = "running"
            rec.set_status(status="running", message="")
            for note in self.notes:
                rec.note(note)
            if self.step == 0:
                rec.add_grid(0, self.sample_image())
            if self.evals is not None:
                self.evals.prepare(rec)  # the first run on a dataset trains its evaluator: not counted as training time
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
                if self.evals is not None and step % cfg.eval_every == 0 and not self.done():  # the end has its own
                    self.evals.submit(step, self.elapsed)  # copies G's weights; a worker thread measures them
                sample_now = step % cfg.sample_every == 0
                ckpt_now = step % cfg.checkpoint_every == 0
                if step % cfg.log_every == 0 or sample_now or ckpt_now or self.done() or self.stop_event.is_set():
                    row = self.read_metrics(now - last_time, images - last_images)
                    last_time, last_images = now, images
                    if self.evals is not None:
                        row.update(self.evals.take())  # the latest finished evaluation, if any
                    if sample_now and self.points is not None:
                        row.update(point_modes(self.generate(self.fixed_z).cpu().numpy(), self.points))
                    rec.add_metrics([row])
                    if not row_is_finite(row):
                        raise Diverged(f"losses became NaN/Inf at step {step} (d_loss={row['d_loss']}, g_loss={row['g_loss']})")
                    rec.heartbeat(self)
                    if sample_now:
                        rec.add_grid(step, self.sample_image())
                    if ckpt_now:
                        self._checkpoint()
                    rec.poll_control(self)
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
                if self.step and self.params_finite():
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

    def _pause_until_resumed(self):
        self.status = "paused"
        self.record.set_status(status="paused", step=self.step, elapsed=self.elapsed)
        while self.pause_event.is_set() and not self.stop_event.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self.record.poll_control(self)
        self.status = "running"
        self.record.set_status(status="running")

    def _finish(self):
        """Last grid and checkpoint, whatever ended the run (unless the weights are no longer finite)."""
        if not self.params_finite():
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
        from .checkpoint import save_training_state
        if not self.params_finite():
            raise Diverged(f"weights became NaN/Inf by step {self.step}")
        if self.dist is not None and not self.dist.is_main:  # DDP hook: only rank 0 writes checkpoints
            return
        path = self.record.checkpoint_path(self.step)
        save_training_state(path, self)
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
