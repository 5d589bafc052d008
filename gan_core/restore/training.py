"""Training a restorer on the GAN engine: the generate loop unchanged (trainer.py: thread, logging, control,
checkpoints, resume, DDP) over a GAN whose `y` is the condition image instead of a class label.

Each batch is damaged on the fly (DamagedBatches): `y` = the damaged image and its mask, or the low-res image at full
size. G(y) restores; D(x, y) judges (image, condition) pairs, one logit per patch; G's loss = adversarial + λ·L1 to
the truth (both logged). The sample grid is a fixed validation set: damaged | restored | truth, so a class watches the
repair improve; every eval_every steps 500 validation images are scored (PSNR, the digit the evaluator reads)."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid

from ..data import to_unit_range
from ..engine.device import cpu_threads
from ..engine.gan import GAN, build_gan
from ..engine.trainer import Trainer
from .damage import MASKS, apply_mask, downsample
from .nets import build_restorer, condition

VALIDATION_SEED = 151_515  # the validation images and their damage: the same for every run and every grid
VALIDATION_IMAGES = 500


def damage(cfg, images: torch.Tensor, generator: torch.Generator):
    """(what a user would give: damaged or low-res images, the mask or None, what the grid shows as damaged)."""
    if cfg.task == "superres":
        low = downsample(images, cfg.factor, cfg.downsample)
        return low, None, torch.nn.functional.interpolate(low, scale_factor=cfg.factor, mode="nearest")
    kinds = list(MASKS) if cfg.mask == "mixed" else [cfg.mask]
    kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))] if len(kinds) > 1 else kinds[0]
    mask = MASKS[kind](len(images), images.shape[-1], generator).to(images.device)
    return apply_mask(images, mask), mask, apply_mask(images, mask)


class DamagedBatches:
    """The run's batches with the label replaced by the damaged condition: (truth, condition)."""

    def __init__(self, batches, cfg):
        self.batches, self.cfg = batches, cfg
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)  # masks are drawn on the CPU (small)

    def sample(self, n: int):
        real, _ = self.batches.sample(n)
        given, mask, _ = damage(self.cfg, real, self.generator)
        return real, condition(self.cfg.task, given, mask, self.cfg.factor)


class RestorerGAN(GAN):
    """G(y) → restored image; D(x, y); G's loss adds λ·L1 to the truth. Keeps device-side sums of both parts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sums = torch.zeros(3, device=self.device)  # adversarial, L1, G updates

    def g_input(self, n: int, y=None) -> torch.Tensor:
        return y

    def g_loss(self, fake: torch.Tensor, y=None, real: torch.Tensor | None = None) -> torch.Tensor:
        adversarial = super().g_loss(fake, y, real)
        l1 = (fake.float() - real.float()).abs().mean()
        with torch.no_grad():
            self.sums += torch.stack([adversarial.detach(), l1.detach(), torch.ones((), device=self.device)])
        return adversarial + self.cfg.l1_weight * l1


def build_restorer_gan(cfg, channels: int, num_classes: int, device, rng, bf16: bool = False) -> RestorerGAN:
    return build_gan(cfg, channels, 0, device, rng, bf16, nets=build_restorer(cfg, channels), cls=RestorerGAN)


class RestorerTrainer(Trainer):
    build_gan = staticmethod(build_restorer_gan)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.evals = None  # generator-quality metrics do not apply; score_validation measures the restorations
        data = self.batches.data if hasattr(self.batches, "data") else self.batches.batches.data  # DDP wraps it
        self.batches = DamagedBatches(self.batches, cfg)
        pick = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(VALIDATION_SEED))
        pick = pick[:VALIDATION_IMAGES]
        truth = to_unit_range(data.images[pick.to(data.images.device)].cpu())
        given, mask, shown = damage(cfg, truth, torch.Generator().manual_seed(VALIDATION_SEED))
        self.val = {"truth": truth, "given": given, "mask": mask, "shown": shown,
                    "cond": condition(cfg.task, given, mask, cfg.factor),
                    "labels": None if data.labels is None else data.labels[pick.to(data.labels.device)].cpu()}
        self.gan.fixed_z = self.val["cond"][:min(cfg.grid_size, 16)].to(self.device)  # saved in checkpoints as z is

    def cpu_threads(self) -> int:
        return cpu_threads(self.cfg)  # full-resolution conv nets: never "light" (and G takes no noise to measure)

    def read_metrics(self, seconds: float, images: int) -> dict:
        """The generate run's columns, with g_loss = the adversarial part, plus l1_loss and, every eval_every
        steps, psnr (on the holes for inpainting) and label_accuracy = share read as the right class."""
        adversarial, l1, updates = self.gan.sums.tolist()
        self.gan.sums.zero_()
        row = super().read_metrics(seconds, images)
        if updates:
            row.update(g_loss=adversarial / updates, l1_loss=l1 / updates)
        if self.cfg.eval_every and (self.step % self.cfg.eval_every == 0 or self.done()):
            row.update(self.score_validation())
        return row

    def score_validation(self) -> dict:
        from .restorer import psnr, read_digits
        v = self.val
        restored = torch.cat([self.gan.generate(c) for c in v["cond"].split(250)]).cpu()
        out = {"psnr": psnr(restored, v["truth"], None if v["mask"] is None else 1 - v["mask"])}
        if v["labels"] is not None:
            try:
                out["label_accuracy"] = float((read_digits(restored, self.cfg.dataset, self.cfg.data_root)
                                               == v["labels"]).float().mean())
            except Exception as e:  # no evaluator for this data set: PSNR alone
                self.notes.append(f"no evaluator accuracy: {e}")
        return out

    def sample_image(self) -> np.ndarray:
        """The fixed validation grid: a row each of damaged, restored and truth."""
        n = len(self.gan.fixed_z)
        restored = self.gan.generate(self.gan.fixed_z).cpu()
        x = torch.cat([self.val["shown"][:n], restored, self.val["truth"][:n]])
        grid = make_grid(x, nrow=n, padding=2, pad_value=-1.0)
        return grid.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
