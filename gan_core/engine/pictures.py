"""Samples as pictures: seeded noise, G's samples as arrays, a grid image, a GIF, a scatter of 2-D points."""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from torchvision.utils import make_grid

from .gan import sample_noise


def noise(cfg, n: int, seed: int) -> torch.Tensor:
    """z for `seed`, on the CPU so the same seed gives the same z on any device."""
    return sample_noise(n, cfg.z_dim, cfg.noise, torch.Generator().manual_seed(int(seed)), "cpu")


@torch.no_grad()
def generate(G, z: torch.Tensor, labels=None, batch: int = 500) -> np.ndarray:
    """float32 samples: (N, C, H, W) images in [-1, 1], or (N, 2) points where G put them (a ring of radius 2
    lies outside [-1, 1]: clamping points squashed every mode onto the square's edge)."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch):
        y = None
        if G.num_classes:
            y = torch.as_tensor(labels[i:i + batch] if labels is not None else np.arange(i, min(i + batch, len(z))) % G.num_classes)
            y = y.to(device).long()
        x = G(z[i:i + batch].to(device), y).float()
        out.append((x.clamp(-1, 1) if x.dim() > 2 else x).cpu())
    return torch.cat(out).numpy().astype(np.float32)


def to_grid_image(samples: np.ndarray, nrow: int | None = None) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → one uint8 HWC grid image (one st.image call, not N)."""
    x = torch.from_numpy(samples)
    nrow = nrow or int(math.ceil(math.sqrt(len(x))))
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=-1.0)
    return grid.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def to_gif(frames: list[np.ndarray], duration_ms: int = 120, scale: int = 1) -> bytes:
    from PIL import Image
    images = [Image.fromarray(f.squeeze(-1) if f.ndim == 3 and f.shape[-1] == 1 else f) for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return buf.getvalue()


def stamp_step(frame: np.ndarray, step: int) -> np.ndarray:
    """The frame (uint8 HW or HWC) with a white strip above it reading "step N", as RGB."""
    from PIL import Image, ImageDraw, ImageFont
    rgb = np.repeat(frame, 3, -1) if frame.ndim == 3 and frame.shape[-1] == 1 else \
        np.stack([frame] * 3, -1) if frame.ndim == 2 else frame
    size = max(12, min(32, rgb.shape[1] // 14))
    strip = Image.new("RGB", (rgb.shape[1], size + 8), "white")
    ImageDraw.Draw(strip).text((4, 3), f"step {step:,}", fill="black", font=ImageFont.load_default(size=size))
    return np.concatenate([np.asarray(strip), rgb], 0)


def history_gif(grids: list[tuple[int, np.ndarray]], duration_ms: int = 150, skip_untrained: bool = True) -> bytes:
    """A run's saved grids as one GIF, each frame labelled with its step. skip_untrained: leave out the step-0 grid
    (G before any update: plain grey for a generator) when later grids exist."""
    if skip_untrained and len(grids) > 1:
        grids = [(step, g) for step, g in grids if step > 0] or grids
    return to_gif([stamp_step(g, step) for step, g in grids], duration_ms=duration_ms)


def points_image(real: np.ndarray, fake: np.ndarray, extent: float, size: int = 320, *,
                 real_rgb=(120, 160, 230), fake_rgb=(240, 110, 20)) -> np.ndarray:
    """A scatter of real (blue) and generated (orange) 2-D points as an RGB uint8 image, for grids and GIFs. The
    view widens (up to 4×) to keep G's points in sight; light grey lines mark every unit, darker ones the axes.
    The colours are keyword defaults so that an exported script (export.py copies this function) keeps them."""
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
    for pts, colour in ((real, real_rgb), (fake, fake_rgb)):
        pts = np.nan_to_num(np.asarray(pts, dtype=np.float32), nan=1e9)
        px = ((pts + extent) / (2 * extent) * (size - 1)).round().astype(int)
        ok = (px >= 1).all(1) & (px < size - 1).all(1)
        cols, rows = px[ok, 0], size - 1 - px[ok, 1]
        for dr in (-1, 0, 1):
            img[rows + dr, cols] = colour
            img[rows, cols + dr] = colour
    return img


# The one palette of 2-D points: Monitor's grids and GIFs, the 2-D playground and the latent explorer.
POINT_RGB = {"real": points_image.__kwdefaults__["real_rgb"], "fake": points_image.__kwdefaults__["fake_rgb"]}
