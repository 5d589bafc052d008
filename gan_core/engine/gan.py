"""One GAN: G, D, an optional EMA copy of G, their optimisers, autocast and noise, and the maths of one update,
written once. The trainer's loop, the 2-D playground, checkpoints, DDP and live evaluation all work on a GAN.

    gan = build_gan(cfg, channels, num_classes, device, rng)
    d = gan.d_step(real, y)          # one D update (losses, GP / R1, grad and weight clipping, instance noise)
    gan.g_step(y)                    # one G update (then the EMA)
    x = gan.generate(z, y)           # samples in [-1, 1], eval mode, EMA weights when on

A task that is not "noise → image" (inpainting, super-resolution) subclasses GAN and overrides `g_input`
(what G sees) and, for extra terms such as an L1 to the target, `d_loss` / `g_loss`; nothing else changes.
Nothing in an update reads back from the device.
"""
from __future__ import annotations

import contextlib
import copy
from typing import NamedTuple

import torch

from ..losses import Loss, gradient_penalty, r1_penalty
from ..models import build_models
from ..models.common import use_generator
from ..models.fold_conv import use_fold_kernels

FIXED_NOISE_SEED_OFFSET = 1_000_003  # fixed grid noise comes from its own stream, identical on every device


class DStep(NamedTuple):
    """What one D update leaves behind: its loss and raw scores (detached) and, when asked to keep it, the fake
    batch still attached to G's graph so the G update can reuse it."""
    loss: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor
    fake: torch.Tensor | None


def make_optimizer(kind: str, params, lr: float, betas: tuple[float, float], device: torch.device,
                   momentum: float = 0.0, fused: bool = True) -> torch.optim.Optimizer:
    """Adam as one fused kernel over all tensors where the device has it (CPU, CUDA) and `fused` asks: the fastest
    of fused, foreach and per-tensor in benchmarks/throughput.py; foreach otherwise. `sgd` is SGD with `momentum`."""
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    impl = {"fused": True} if fused and torch.device(device).type in ("cpu", "cuda") else {"foreach": True}
    return torch.optim.Adam(params, lr=lr, betas=betas, **impl)


def sample_noise(n: int, z_dim: int, kind: str, generator: torch.Generator, device=None) -> torch.Tensor:
    """z ~ N(0, 1) (`gaussian`) or U(-1, 1) (`uniform`), (n, z_dim), from `generator`: the one noise sampler."""
    device = device or generator.device
    if kind == "uniform":
        return torch.rand(n, z_dim, generator=generator, device=device).mul_(2).sub_(1)
    return torch.randn(n, z_dim, generator=generator, device=device)


def has_batchnorm(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    """‖all gradients of `module`‖₂ as a device tensor (no host sync)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _uncompiled(module: torch.nn.Module) -> torch.nn.Module:
    """The eager module behind a torch.compile wrapper, also when a DDP wrapper sits around the compiled one."""
    if hasattr(module, "_orig_mod"):
        return module._orig_mod
    inner = getattr(module, "module", None)
    if inner is not None and hasattr(inner, "_orig_mod"):
        module.module = inner._orig_mod
    return module


def lr_factor(progress: float, decay: float, begin: float = 0.0) -> float:
    """The share of its base learning rate a run uses at `progress` (0..1 of its budget): 1 until the last `decay`
    of the run (and not before `begin`), then falling linearly to 0 at the end (linear decay to 0 is what "Budgeted
    Training", Li et al. 2020, found best for a known budget)."""
    start = max(1.0 - decay, begin)
    if decay <= 0 or progress <= start or start >= 1.0:
        return 1.0
    return max(0.0, (1.0 - progress) / (1.0 - start))


class GAN:
    """G and D with everything one update needs. `cfg` is a validated RunConfig (its loss, regulariser, optimiser
    and noise fields); `G_fwd` / `D_fwd` are what forward passes go through (the nets themselves, or their
    torch.compile / DDP wrappers). `instance_sigma` is set by the loop (the trainer anneals it)."""

    def __init__(self, cfg, G: torch.nn.Module, D: torch.nn.Module, device: torch.device | str = "cpu",
                 rng: torch.Generator | None = None, *, bf16: bool = False, opt_g=None, opt_d=None,
                 channels: int = 0, num_classes: int = 0):
        self.cfg, self.G, self.D = cfg, G, D
        self.channels, self.num_classes = channels, num_classes  # the data's (checkpoints rebuild G from them)
        self.device = torch.device(device)
        self.rng = rng if rng is not None else torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.loss: Loss = cfg.loss_info
        self.bf16 = bf16
        self.G_ema = copy.deepcopy(G).requires_grad_(False) if cfg.ema else None
        betas = (cfg.beta1, cfg.beta2)
        if opt_g is None:
            opt_g = make_optimizer(cfg.optimizer, G.parameters(), cfg.lr_g, betas, self.device, cfg.beta1)
        if opt_d is None:
            opt_d = make_optimizer(cfg.optimizer, D.parameters(), cfg.lr_d, betas, self.device, cfg.beta1)
        self.opt_g, self.opt_d = opt_g, opt_d
        self.G_fwd, self.D_fwd = G, D
        # D scores real and fake in one call unless batch statistics (BatchNorm) would then mix the two batches
        self.joint_d = not has_batchnorm(D)
        self.instance_sigma = 0.0
        self.average_grads = None  # data parallelism without DDP (distributed.py): averages a net's gradients over ranks
        self.base_lr = {"g": cfg.lr_g, "d": cfg.lr_d}
        self.fixed_z = self.fixed_y = None

    def follow_schedule(self, progress: float, lr_progress: float | None = None, step: int = 0) -> None:
        """What changes over a run with its progress (0..1 of its budget; 0 when it has none) after `step`
        iterations: the instance noise annealed to 0, and the learning rates over the last `lr_decay` of the run
        (`lr_factor`), never before iteration `lr_decay_after` (the share of the budget those take at the run's pace:
        exact on steps, estimated on the clock), at `lr_progress` when given (DDP: the steps or rank 0's clock as
        last shared, never a rank's own clock, since a rate that differed between ranks would part their weights)."""
        self.instance_sigma = self.cfg.instance_noise * max(0.0, 1.0 - progress)
        lr_progress = progress if lr_progress is None else lr_progress
        after = self.cfg.lr_decay_after
        begin = (after * lr_progress / step if step else 1.0) if after else 0.0
        factor = lr_factor(lr_progress, self.cfg.lr_decay, begin)
        for opt, base in ((self.opt_g, self.base_lr["g"]), (self.opt_d, self.base_lr["d"])):
            for group in opt.param_groups:
                group["lr"] = base * factor

    # ------------------------------------------------------------------ pieces
    def noise(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return sample_noise(n, self.cfg.z_dim, self.cfg.noise, generator or self.rng, device or self.device)

    def g_input(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """What G is fed for a batch of n: noise here; a conditioning image in an image-to-image task."""
        return self.noise(n)

    def set_fixed_noise(self, n: int) -> None:
        """The grid's fixed noise (its own seeded stream, the same on every device) and labels 0..9, 0..9, …"""
        fixed = torch.Generator().manual_seed(self.cfg.seed + FIXED_NOISE_SEED_OFFSET)
        self.fixed_z = self.noise(n, fixed, "cpu").to(self.device)
        self.fixed_y = (torch.arange(n) % self.num_classes).to(self.device) if self.G.num_classes else None

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def instance_noise(self, x: torch.Tensor) -> torch.Tensor:
        if self.instance_sigma <= 0:
            return x
        return x + self.instance_sigma * torch.randn(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator samples come from: the EMA copy when on, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    # ------------------------------------------------------------------ losses
    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D's loss with its regularisers (GP, R1, label smoothing, instance noise), and D's raw scores."""
        cfg, D, loss = self.cfg, self.D_fwd, self.loss
        real_in = self.instance_noise(real)
        if cfg.r1_gamma:
            real_in = real_in.detach().requires_grad_(True)
        fake_in = self.instance_noise(fake.detach())
        r2 = loss.r2 and cfg.r1_gamma  # the loss also penalises D's gradient at fakes (R3GAN's R1 + R2)
        if r2:
            fake_in = fake_in.detach().requires_grad_(True)
        if self.joint_d:  # one D call over [real; fake]: the same maths, bigger matmuls, no gradient adds
            both = D(torch.cat([real_in, fake_in.to(real_in.dtype)]), None if y is None else torch.cat([y, y]))
            d_real, d_fake = both.float().split(real_in.shape[0])
        else:
            d_real = D(real_in, y).float()
            d_fake = D(fake_in, y).float()
        loss_d = loss.d(d_real, d_fake, 1.0 - cfg.label_smoothing)
        if loss.gradient_penalty:
            loss_d = loss_d + cfg.gp_lambda * gradient_penalty(self.D, real.detach(), fake.detach().to(real.dtype), y,
                                                               self.rng)
        if cfg.r1_gamma:
            loss_d = loss_d + 0.5 * cfg.r1_gamma * r1_penalty(d_real, real_in)
        if r2:
            loss_d = loss_d + 0.5 * cfg.r1_gamma * r1_penalty(d_fake, fake_in)
        return loss_d, d_real, d_fake

    def g_loss(self, fake: torch.Tensor, y=None, real: torch.Tensor | None = None) -> torch.Tensor:
        """G's adversarial loss on a fake batch (a relativistic loss also scores `real`)."""
        d_fake = self.D_fwd(self.instance_noise(fake), y).float()
        if self.loss.relativistic:
            with torch.no_grad():
                d_real = self.D_fwd(self.instance_noise(real), y).float()
            return self.loss.g(d_fake, d_real)
        return self.loss.g(d_fake)

    # ------------------------------------------------------------------ updates
    def d_step(self, real: torch.Tensor, y=None, z: torch.Tensor | None = None, keep_fake: bool = False) -> DStep:
        """One update of D on `real` and a fresh fake batch (from `z` when given, else fresh noise). With
        `keep_fake` G's forward keeps its graph so the next `g_step` can reuse it (one G forward, as dcgan)."""
        z = self.g_input(real.shape[0], y) if z is None else z
        with self.autocast():
            if keep_fake:
                fake = self.G_fwd(z, y)
            else:
                with torch.no_grad():
                    fake = self.G_fwd(z, y)
            loss_d, d_real, d_fake = self.d_loss(real, fake, y)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if self.average_grads is not None:
            self.average_grads(self.D)
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.D.parameters(), self.cfg.grad_clip, foreach=True)
        self.opt_d.step()
        if self.loss.clip_weights:
            self.clip_weights()
        return DStep(loss_d.detach(), d_real.detach(), d_fake.detach(), fake if keep_fake else None)

    def g_step(self, y=None, fake: torch.Tensor | None = None, real: torch.Tensor | None = None) -> torch.Tensor:
        """One update of G against the current D (on `fake` when d_step kept it), then the EMA. D is frozen
        meanwhile: G needs D's input gradient only, and a frozen D lets DDP's wrapper step aside."""
        self.D.requires_grad_(False)
        try:
            with self.autocast():
                if fake is None:
                    fake = self.G_fwd(self.g_input(self.cfg.batch_size, y), y)
                loss_g = self.g_loss(fake, y, real)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        finally:
            self.D.requires_grad_(True)
        if self.average_grads is not None:
            self.average_grads(self.G)
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.G.parameters(), self.cfg.grad_clip, foreach=True)
        self.opt_g.step()
        if self.G_ema is not None:
            self.update_ema()
        return loss_g.detach()

    @torch.no_grad()
    def clip_weights(self) -> None:
        """WGAN's weight clipping of D to ±clip_value."""
        params = list(self.D.parameters())
        torch._foreach_clamp_min_(params, -self.cfg.clip_value)
        torch._foreach_clamp_max_(params, self.cfg.clip_value)

    @torch.no_grad()
    def update_ema(self) -> None:
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - self.cfg.ema)
        for eb, b in zip(self.G_ema.buffers(), self.G.buffers()):
            eb.copy_(b)

    # ------------------------------------------------------------------ reading out
    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Samples in [-1, 1] (EMA weights when enabled), G in eval mode so BatchNorm uses running stats."""
        net = self.sampler
        was_training = net.training
        net.eval()
        try:
            with self.autocast():
                return net(z.to(self.device), None if y is None else y.to(self.device)).float()
        finally:
            net.train(was_training)

    def params_finite(self) -> bool:
        return bool(torch.stack([p.isfinite().all() for p in self.G.parameters()] +
                                [p.isfinite().all() for p in self.D.parameters()]).all())

    # ------------------------------------------------------------------ compilation
    def compile(self) -> str | None:
        """torch.compile G and D for the forward passes; returns a note when that is unavailable."""
        try:
            self.G_fwd, self.D_fwd = torch.compile(self.G), torch.compile(self.D)
        except Exception as e:  # no compiler, unsupported platform
            self.G_fwd, self.D_fwd = self.G, self.D
            return f"torch.compile unavailable ({type(e).__name__}: {e}); running eagerly"
        return None

    def uncompile(self) -> None:
        """Back to eager forward passes (keeping any DDP wrapper), and D trainable again."""
        self.G_fwd, self.D_fwd = _uncompiled(self.G_fwd), _uncompiled(self.D_fwd)
        self.D.requires_grad_(True)


def build_gan(cfg, channels: int, num_classes: int, device: torch.device, rng: torch.Generator,
              bf16: bool = False, nets: tuple | None = None, cls: type = GAN) -> GAN:
    """The GAN a run trains: the registry's nets (or `nets`, a task's own) on `device` (channels_last for conv nets
    on a CPU), dropout masks from the run's own stream, optimisers, EMA and the grid's fixed noise."""
    G, D = nets or build_models(cfg, channels, num_classes)
    use_generator(D, rng)  # dropout masks from the run's own seeded stream (determinism)
    G.to(device)
    D.to(device)
    if device.type == "cpu" and any(isinstance(m, torch.nn.Conv2d) for m in D.modules()):
        for net in (G, D):  # oneDNN's own layout: no reorder around each conv (1.1× on dcgan32, dcgan28)
            net.to(memory_format=torch.channels_last)
            use_fold_kernels(net)  # one-channel image convolutions as a product and a fold (models/fold_conv.py)
    gan = cls(cfg, G, D, device, rng, bf16=bf16, channels=channels, num_classes=num_classes)
    gan.set_fixed_noise(cfg.grid_size)
    return gan
