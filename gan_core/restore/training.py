"""Training a restorer: the generate loop (trainer.py: thread, logging, control, checkpoints, resume) with an
image-to-image step. Each batch is damaged on the fly; D learns real vs restored (damaged, image) pairs; G learns to
fool D and to match the truth (adversarial + λ·L1, both logged). The sample grid is a fixed validation set:
damaged | restored | truth, so a class watches the repair improve."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid

from ..data import to_unit_range
from ..trainer import Trainer, cpu_threads
from .damage import MASKS, apply_mask, downsample
from .nets import build_restorer

VALIDATION_SEED = 151_515  # the validation images and their damage: the same for every run and every grid
VALIDATION_IMAGES = 500  # scored at each eval_every step (PSNR on the holes, the digit the evaluator reads)


def damage(cfg, images: torch.Tensor, generator: torch.Generator):
    """(what G is given, mask or None, what G's output is shown beside) for a batch of true images."""
    if cfg.task == "superres":
        low = downsample(images, cfg.factor, cfg.downsample)
        return low, None, torch.nn.functional.interpolate(low, scale_factor=cfg.factor, mode="nearest")
    kinds = [k for k in MASKS] if cfg.mask == "mixed" else [cfg.mask]
    kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))] if len(kinds) > 1 else kinds[0]
    mask = MASKS[kind](len(images), images.shape[-1], generator).to(images.device)
    return images, mask, apply_mask(images, mask)


class RestorerTrainer(Trainer):
    def build_nets(self):
        return build_restorer(self.cfg, self.channels)

    def cpu_threads(self) -> int:
        return cpu_threads(self.cfg)  # conv nets at full resolution: never "light" (and G takes no noise to measure)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.evals = None  # generator-quality metrics do not apply; _score_validation measures the restorations
        self.damage_rng = torch.Generator().manual_seed(cfg.seed + 1)  # masks are drawn on the CPU (small)
        self._l1 = torch.zeros((), device=self.device)
        data = self.batches.data
        pick = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(VALIDATION_SEED))
        val = to_unit_range(data.images[pick[:VALIDATION_IMAGES]].cpu())
        gen = torch.Generator().manual_seed(VALIDATION_SEED)
        given, mask, shown = damage(cfg, val, gen)
        self.val = {"truth": val, "given": given, "mask": mask, "shown": shown,
                    "labels": None if data.labels is None else data.labels[pick[:VALIDATION_IMAGES]].cpu()}

    def _restore(self, given, mask):
        net = self.G_ema if self.G_ema is not None else self.G
        was = net.training
        net.eval()
        try:
            with torch.no_grad(), self._autocast():
                return torch.cat([net(given[i:i + 250].to(self.device), None if mask is None else mask[i:i + 250]
                                      .to(self.device)).float() for i in range(0, len(given), 250)])
        finally:
            net.train(was)

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> None:
        """D on (condition, real) vs (condition, restored); then G: fool D + λ·L1 to the truth."""
        cfg, G, D, loss = self.cfg, self.G_fwd, self.D_fwd, self.loss
        real, _ = self.batches.sample(cfg.batch_size)
        given, mask, _ = damage(cfg, real, self.damage_rng)
        with self._autocast():
            fake = G(given, mask)
            cond = self.G.condition(given, mask)
            d_real = D(cond, real).float()
            d_fake = D(cond, fake.detach()).float()
            loss_d = loss.d(d_real, d_fake, 1.0 - cfg.label_smoothing)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        self.D.requires_grad_(False)
        with self._autocast():
            adversarial = loss.g(D(cond, fake).float())
            l1 = (fake.float() - real).abs().mean()
            loss_g = adversarial + cfg.l1_weight * l1
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.G.parameters(), cfg.grad_clip, foreach=True)
        self.opt_g.step()
        self.D.requires_grad_(True)
        if self.G_ema is not None:
            self._update_ema()
        from ..losses import d_scores_for_display
        with torch.no_grad():
            self._acc += torch.stack([loss_d.detach(), adversarial.detach(),
                                      d_scores_for_display(d_real.detach(), cfg.loss).mean(),
                                      d_scores_for_display(d_fake.detach(), cfg.loss).mean(), self._g_step_flags[1]])
            self._l1 += l1.detach()
        self._acc_iters += 1
        self.step += 1

    def read_metrics(self, seconds: float, images: int) -> dict:
        """The generate run's columns (g_loss = the adversarial part), plus L1 and, every eval_every steps, the
        validation scores: PSNR (on the holes for inpainting) and label_accuracy = share read as the right digit."""
        l1 = float(self._l1) / max(self._acc_iters, 1)
        self._l1.zero_()
        row = super().read_metrics(seconds, images)
        row["l1_loss"] = l1
        if self.cfg.eval_every and (self.step % self.cfg.eval_every == 0 or self.done()):
            row.update(self.score_validation())
        return row

    def score_validation(self) -> dict:
        from . import psnr, read_digits
        v = self.val
        restored = self._restore(v["given"], v["mask"]).cpu()
        out = {"psnr": psnr(restored, v["truth"], None if v["mask"] is None else 1 - v["mask"])}
        if v["labels"] is not None:
            try:
                digits = read_digits(restored, self.cfg.dataset, self.cfg.data_root)
                out["label_accuracy"] = float((digits == v["labels"]).float().mean())
            except Exception as e:  # no evaluator for this data set: PSNR alone
                self.notes.append(f"no evaluator accuracy: {e}")
        return out

    def sample_image(self) -> np.ndarray:
        """The fixed validation grid: a row each of damaged, restored and truth."""
        n = min(self.cfg.grid_size, 16)
        v = self.val
        restored = self._restore(v["given"][:n], None if v["mask"] is None else v["mask"][:n]).cpu()
        x = torch.cat([v["shown"][:n], restored, v["truth"][:n]])
        grid = make_grid(x, nrow=n, padding=2, pad_value=-1.0)
        return grid.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


