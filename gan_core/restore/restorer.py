"""Restoring images with GANs: inpainting (repairing holes) and super-resolution (blurry → sharp), the two
applications tutorial 000 names beside generation.

A generator run restores by a GAN-prior search (prior.py, method "prior"); a restorer run (task inpaint or
superres, training.py) by its trained image-to-image G (nets.py, method "trained"). Scores: PSNR on the hole or the whole
image, SSIM (torchmetrics) and the digit the quality evaluator reads (metrics.py's classifier).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import StudioError
from ..tasks import RESTORER_TASKS
from .damage import mean_fill, upsample_bicubic
from .prior import SearchResult, SearchSettings, prior_search

MAX_NPY_BYTES = 1024 ** 3  # 1 GiB: far above any real batch (60k MNIST digits as float32 are 188 MB)
MAX_IMAGES = 100_000


class RestoreError(StudioError, ValueError):
    """Input that cannot be restored; the message names the problem in one line."""


# ---------------------------------------------------------------------- scores
def psnr(restored: torch.Tensor, truth: torch.Tensor, region: torch.Tensor | None = None) -> float:
    """Mean per-image PSNR in dB for images in [-1, 1] (peak-to-peak 2), over `region` (1 = counted) if given."""
    err = (restored.float() - truth.float()) ** 2
    if region is None:
        mse = err.flatten(1).mean(1)
    else:
        region = region.expand_as(err).float()
        mse = (err * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1.0)
    return float((10 * torch.log10(4.0 / mse.clamp_min(1e-10))).mean())


def ssim(restored: torch.Tensor, truth: torch.Tensor) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure
    return float(structural_similarity_index_measure(restored.float(), truth.float(), data_range=2.0))


@torch.no_grad()
def read_digits(images: torch.Tensor, dataset: str = "mnist-embedded", root: str = "./data") -> torch.Tensor:
    """The class the quality evaluator reads in each image (its classifier is trained once per dataset, cached)."""
    from ..engine.metrics import get_evaluator, to_geometry
    ev = get_evaluator(dataset, root)
    return torch.cat([ev.net(to_geometry(x.float().cpu(), ev.size, ev.channels)).argmax(1)
                      for x in images.split(1000)])


def scores(restored: torch.Tensor, truth: torch.Tensor, labels: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, dataset: str = "mnist-embedded", root: str = "./data") -> dict:
    """What the page, the benchmark and `evaluate` report for a batch of restorations (`mask`: 1 = was known)."""
    out = {"psnr": round(psnr(restored, truth), 2), "ssim": round(ssim(restored, truth), 4)}
    if mask is not None:
        out["psnr_hole"] = round(psnr(restored, truth, 1 - mask), 2)
    if labels is not None:
        out["accuracy"] = round(float((read_digits(restored, dataset, root) == labels.cpu()).float().mean()), 4)
    return out


# ---------------------------------------------------------------------- runs
@dataclass
class Restorer:
    """A run loaded for restoring: its generator (method "prior") and what shape of images it handles."""
    method: str
    model: torch.nn.Module
    cfg: object
    channels: int
    size: int
    step: int
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.size, self.size


def mean_image(restorer: Restorer) -> torch.Tensor:
    """The data set's mean image at the run's geometry (the mean-fill baseline)."""
    from ..data import load_images, to_unit_range
    data = load_images(restorer.cfg.dataset, restorer.cfg.data_root, restorer.size, restorer.channels)
    return to_unit_range(data.images[:10_000]).mean(0, keepdim=True)


# ---------------------------------------------------------------------- checking input at the edge
def check_images(x, what: str = "--input") -> torch.Tensor:
    """A float array in [-1, 1], (N, C, H, W) → float32 tensor; RestoreError naming the problem otherwise."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise RestoreError(f"{what}: expected float32 images, got dtype {x.dtype}")
    if x.ndim != 4:
        raise RestoreError(f"{what}: expected shape (N, C, H, W), got {tuple(x.shape)}")
    if not 1 <= len(x) <= MAX_IMAGES:
        raise RestoreError(f"{what}: needs 1 to {MAX_IMAGES} images, got {len(x)}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise RestoreError(f"{what}: contains NaN or infinite values")
    if x.size and (x.min() < -1.001 or x.max() > 1.001):
        raise RestoreError(f"{what}: values must be in [-1, 1], got {x.min():.3g} to {x.max():.3g}")
    return torch.from_numpy(np.ascontiguousarray(x)).clamp(-1, 1)


def check_mask(mask, images: torch.Tensor, what: str = "--mask") -> torch.Tensor:
    """(N, 1 or C, H, W) of 0/1 matching `images` → (N, 1, H, W) float (a pixel is known where every channel is)."""
    m = np.asarray(mask)
    n, c, h, w = images.shape
    if m.ndim != 4 or m.shape[0] != n or m.shape[1] not in (1, c) or m.shape[2:] != (h, w):
        raise RestoreError(f"{what}: shape {tuple(m.shape)} does not match the images {tuple(images.shape)}; "
                           f"expected ({n}, 1 or {c}, {h}, {w})")
    if m.dtype.kind not in "fiub":
        raise RestoreError(f"{what}: expected 0/1 numbers, got dtype {m.dtype}")
    m = m.astype(np.float32)
    if not np.isin(m, (0.0, 1.0)).all():
        raise RestoreError(f"{what}: values must be 0 (missing) or 1 (known)")
    return torch.from_numpy(m).amin(1, keepdim=True)


def load_npy(path, what: str) -> np.ndarray:
    """A .npy file read without unpickling anything and refused above MAX_NPY_BYTES."""
    path = Path(path)
    if not path.is_file():
        raise RestoreError(f"{what} {path}: no such file")
    if path.stat().st_size > MAX_NPY_BYTES:
        raise RestoreError(f"{what} {path}: larger than the {MAX_NPY_BYTES // 2**20} MiB limit")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RestoreError(f"{what} {path}: not a readable .npy array ({reason})") from None


def check_fits(restorer: Restorer, task: str, images: torch.Tensor, factor: int) -> None:
    """The images fit the run: its channels, and its size (or its size / factor for super-resolution)."""
    c, h, w = images.shape[1:]
    if restorer.method == "trained" and task != restorer.cfg.task:
        raise RestoreError(f"run {restorer.name} is a trained {restorer.cfg.task} restorer; use --task {restorer.cfg.task} "
                           f"(or a generator run, which does both)")
    if restorer.method == "trained" and task == "superres" and factor != restorer.cfg.factor:
        raise RestoreError(f"--factor {factor}: run {restorer.name} was trained for ×{restorer.cfg.factor}")
    size = restorer.size // factor if task == "superres" else restorer.size
    if task == "superres" and restorer.size % factor:
        raise RestoreError(f"--factor {factor}: the run's {restorer.size}×{restorer.size} images do not divide by it")
    if (c, h, w) != (restorer.channels, size, size):
        low = f" (its {restorer.size}×{restorer.size} images ÷ {factor})" if task == "superres" else ""
        raise RestoreError(f"--input: images of shape {(c, h, w)} do not fit run {restorer.name}, which needs "
                           f"({restorer.channels}, {size}, {size}){low} from {restorer.cfg.dataset}")


# ---------------------------------------------------------------------- restoring
def restore(restorer: Restorer, task: str, images: torch.Tensor, mask: torch.Tensor | None = None, factor: int = 4,
            settings: SearchSettings | None = None, on_progress=None) -> SearchResult:
    """Restore checked images with a loaded run: damaged images + mask (inpaint) or low-res images (superres)."""
    if task not in RESTORER_TASKS:
        raise RestoreError(f"--task must be one of {', '.join(RESTORER_TASKS)}, got {task!r}")
    check_fits(restorer, task, images, factor)
    if task == "inpaint" and mask is None:
        raise RestoreError("--mask is needed for inpainting (a .npy of 0/1, or centre|left|bottom|random)")
    if restorer.method == "trained":
        from .nets import restore_with
        images = restore_with(restorer.model, images, mask)
        return SearchResult(images, images, None)
    with torch.inference_mode(False):
        return prior_search(restorer.model, restorer.cfg.noise, task, images, mask, factor, "area", settings, on_progress)


def baseline(task: str, images: torch.Tensor, mask: torch.Tensor | None = None, factor: int = 4,
             mean: torch.Tensor | None = None) -> torch.Tensor:
    """Mean fill (inpainting) or bicubic up-sampling (super-resolution)."""
    if task == "inpaint":
        return mean_fill(images, mask, mean if mean is not None else torch.zeros(1, *images.shape[1:]))
    return upsample_bicubic(images, factor)
