"""What the 2-D playground draws and measures, as pure functions of G, D and point sets: D's surface, G's
manifold and gradient field, grid densities, KL/JS and the VEEGAN mode metrics. No state, no stepping
(that is playground.py); nothing here imports streamlit."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..data import PointSet
from ..losses import Loss

NOISE_LIMIT = {"uniform": 1.0, "gaussian": 2.5}  # the part of noise space the manifold grid spans (±)
def plane_grid(extent: float, n: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """xs, ys (n each) and the n·n points in row-major order: row i is y = ys[i] (plotly's heatmap layout)."""
    xs = np.linspace(-extent, extent, n, dtype=np.float32)
    ys = xs.copy()
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))


@torch.no_grad()
def d_surface(D, loss: Loss, extent: float, n: int = 60) -> dict:
    """D's output over the plane: z[i, j] at (xs[j], ys[i]). Sigmoid probability for the BCE family, the raw
    critic score otherwise (`kind` says which)."""
    xs, ys, pts = plane_grid(extent, n)
    out = D(pts)
    kind = loss.scores
    if kind == "probability":
        out = torch.sigmoid(out)
    return {"x": xs, "y": ys, "z": out.reshape(n, n).numpy(), "kind": kind}


@torch.no_grad()
def generator_manifold(G, z_dim: int, noise: str, lines: int = 11, points: int = 60) -> list[np.ndarray]:
    """A grid in noise space mapped through G. 2-D noise: `lines` lines along each axis (a deformed sheet);
    1-D noise: one curve. Each polyline is an (m, 2) array in data space."""
    lim = NOISE_LIMIT[noise]
    t = torch.linspace(-lim, lim, points)
    if z_dim == 1:
        return [G(t[:, None]).numpy()]
    out = []
    for c in torch.linspace(-lim, lim, lines):
        along_x = torch.stack([t, torch.full_like(t, c)], 1)
        along_y = torch.stack([torch.full_like(t, c), t], 1)
        out += [G(along_x).numpy(), G(along_y).numpy()]
    return out


def gradient_field(G, D, loss: Loss, z: torch.Tensor, real: torch.Tensor | None = None) -> dict:
    """Where G pushes its points: −∇x of G's per-sample loss at x = G(z), for each z (a relativistic loss pairs
    each with a point of `real`).

    The loss functions average over the batch, so the gradient of the mean is scaled back by N."""
    with torch.no_grad():
        x = G(z).detach().requires_grad_(True)  # detach: a new leaf even when G returns its input
        partner = D(real[:len(z)]) if loss.relativistic else None
    with torch.enable_grad():
        scores = D(x)
        g_loss = loss.g(scores, partner) if loss.relativistic else loss.g(scores)
        (grad,) = torch.autograd.grad(g_loss, x)  # w.r.t. x only: D's weights are left alone
    return {"points": x.detach().numpy(), "direction": (-grad * x.shape[0]).numpy()}


def grid_density(samples, extent: float, bins: int = 64, bandwidth: float | None = None) -> np.ndarray:
    """A smoothed histogram density on the bins×bins grid over [-extent, extent]² (row i = y), summing to 1.

    Samples outside the square are clipped to its edge (so mass thrown far away still counts as a mismatch);
    a Gaussian kernel of `bandwidth` (default 1.5 cells) plus a tiny floor keep every cell positive, so KL stays finite."""
    pts = np.clip(np.asarray(samples, dtype=np.float64), -extent, extent)
    pts = pts[np.isfinite(pts).all(1)]
    hist, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=bins, range=[[-extent, extent], [-extent, extent]])
    cell = 2 * extent / bins
    sigma_cells = (bandwidth / cell) if bandwidth else 1.5
    radius = max(1, int(math.ceil(3 * sigma_cells)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_cells) ** 2)
    k /= k.sum()
    for axis in (0, 1):  # separable blur; mirrored edges keep the mass inside the square
        padded = np.pad(hist, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="symmetric")
        hist = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), axis, padded)
    total = hist.sum()
    p = hist / total if total > 0 else np.full_like(hist, 1.0 / hist.size)
    p = p + 1e-6 / p.size
    return p / p.sum()


def kl_js(real, fake, extent: float, bins: int = 64, bandwidth: float | None = None) -> dict:
    """KL(real ‖ fake) and JS(real, fake) in nats between grid densities (see grid_density). KL grows when G
    misses modes; JS is symmetric and at most ln 2."""
    p = grid_density(real, extent, bins, bandwidth)
    q = grid_density(fake, extent, bins, bandwidth)
    m = 0.5 * (p + q)
    kl = float(np.sum(p * np.log(p / q)))
    js = float(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))
    return {"kl": max(kl, 0.0), "js": max(js, 0.0)}


def true_density(points: PointSet, extent: float, bins: int = 80, n: int = 50_000) -> dict:
    """The real density on a grid, for the contour layer: exact for Gaussian mixtures (with σ widened to one
    grid cell so the contours are visible at plot resolution), a smoothed histogram of n samples otherwise."""
    xs, ys, pts = plane_grid(extent, bins)
    if points.centres is not None:
        sigma = max(points.sigma, 2 * extent / bins)
        d2 = torch.cdist(pts, points.centres.float()).pow(2)
        dens = torch.exp(-0.5 * d2 / sigma**2).mean(1) / (2 * math.pi * sigma**2)
        z = dens.reshape(bins, bins).numpy()
    else:
        samples = points.sample(n, torch.Generator().manual_seed(0)).numpy()
        z = grid_density(samples, extent, bins) / (2 * extent / bins) ** 2
    return {"x": xs, "y": ys, "z": z}


