"""Damage made on the fly from any image batch, and the naive repairs a GAN must beat.

Images are float tensors in [-1, 1], (N, C, H, W). A mask is (N, 1, H, W) float: 1 = known pixel, 0 = missing.
Super-resolution degrades by average pooling (each low-res pixel is the mean of a factor×factor block) or bicubic.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def centre_mask(n: int, size: int, generator=None, hole: int | None = None) -> torch.Tensor:
    """A square hole in the middle, half the side (14×14 on 28×28 digits)."""
    hole = hole or size // 2
    m = torch.ones(n, 1, size, size)
    lo = (size - hole) // 2
    m[:, :, lo:lo + hole, lo:lo + hole] = 0
    return m


def left_mask(n: int, size: int, generator=None) -> torch.Tensor:
    m = torch.ones(n, 1, size, size)
    m[..., : size // 2] = 0
    return m


def bottom_mask(n: int, size: int, generator=None) -> torch.Tensor:
    m = torch.ones(n, 1, size, size)
    m[..., size // 2:, :] = 0
    return m


def blocks_mask(n: int, size: int, generator=None, blocks: int = 4) -> torch.Tensor:
    """`blocks` random squares of a quarter to a third of the side per image, all in one batched op."""
    side = torch.randint(size // 4, size // 3 + 1, (n, blocks, 1, 1), generator=generator)
    top = (torch.rand(n, blocks, 1, 1, generator=generator) * (size - side + 1)).long()
    left = (torch.rand(n, blocks, 1, 1, generator=generator) * (size - side + 1)).long()
    r = torch.arange(size).view(1, 1, size, 1)
    c = torch.arange(size).view(1, 1, 1, size)
    holes = (r >= top) & (r < top + side) & (c >= left) & (c < left + side)
    return (~holes.any(1, keepdim=True)).float()


def strokes_mask(n: int, size: int, generator=None, strokes: int = 3) -> torch.Tensor:
    """Random scratches: thick line segments between random points (a scratched photo)."""
    ends = torch.rand(n, strokes, 2, 2, generator=generator) * (size - 1)  # (n, s, point a/b, y/x)
    width = max(1.0, size / 14)
    grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), -1).float()  # (H, W, 2)
    a, b = ends[:, :, 0, None, None, :], ends[:, :, 1, None, None, :]  # (n, s, 1, 1, 2)
    ab = b - a
    t = (((grid - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0, 1)  # (n, s, H, W)
    dist = (grid - (a + t[..., None] * ab)).norm(dim=-1)
    return (dist > width).all(1, keepdim=True).float()


MASKS = {"centre": centre_mask, "left": left_mask, "bottom": bottom_mask, "random": blocks_mask,
         "strokes": strokes_mask}
MASK_HELP = {"centre": "a square hole in the middle (half the side)", "left": "the left half missing",
             "bottom": "the bottom half missing", "random": "four random square blocks missing",
             "strokes": "three random scratches"}


def make_mask(kind: str, n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) float mask of a named kind; random kinds are reproducible for `seed`."""
    if kind not in MASKS:
        raise ValueError(f"unknown mask {kind!r}; choose one of {', '.join(MASKS)}")
    return MASKS[kind](n, size, torch.Generator().manual_seed(seed))


def apply_mask(images: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """The damaged images: missing pixels set to `fill` (mid-grey by default)."""
    return images * mask + fill * (1 - mask)


def downsample(images: torch.Tensor, factor: int, mode: str = "area") -> torch.Tensor:
    """Low-resolution images: average pooling (`area`) or bicubic with antialiasing."""
    if mode == "area":
        return F.avg_pool2d(images, factor)
    size = (images.shape[-2] // factor, images.shape[-1] // factor)
    return F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def upsample_bicubic(low: torch.Tensor, factor: int) -> torch.Tensor:
    """The naive super-resolution baseline."""
    return F.interpolate(low, scale_factor=factor, mode="bicubic", align_corners=False).clamp(-1, 1)


def mean_fill(damaged: torch.Tensor, mask: torch.Tensor, mean_image: torch.Tensor) -> torch.Tensor:
    """The naive inpainting baseline: holes filled with the data set's mean image."""
    return damaged * mask + mean_image.to(damaged) * (1 - mask)


def keep_known(restored: torch.Tensor, damaged: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels exactly as given; only the holes come from the model."""
    return torch.where(mask.expand_as(restored) > 0.5, damaged, restored)


def match_low_res(restored: torch.Tensor, low: torch.Tensor, factor: int) -> torch.Tensor:
    """Shift each factor×factor block so its mean equals the low-res pixel: what is known (the block means) is
    kept, up to clipping at ±1. Valid for `area` degradation."""
    error = low - F.avg_pool2d(restored, factor)
    return (restored + F.interpolate(error, scale_factor=factor, mode="nearest")).clamp(-1, 1)
