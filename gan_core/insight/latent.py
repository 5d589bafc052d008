"""Sampling from a trained generator: seeded noise, lerp/slerp walks, images for the latent explorer and CLI."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.pictures import generate, noise, to_grid_image


def slider_noise(cfg, seed: int, values: list[float]) -> torch.Tensor:
    """The seed's z (one row) with its first len(values) dimensions set by the latent explorer's sliders."""
    z = noise(cfg, 1, seed)
    z[0, :len(values)] = torch.tensor(values, dtype=z.dtype)
    return z


def seed_walk(cfg, seed_a: int, seed_b: int, frames: int, method: str = "slerp") -> torch.Tensor:
    """`frames` points from seed_a's z to seed_b's z inclusive (lerp or slerp)."""
    return walk(noise(cfg, 1, seed_a)[0], noise(cfg, 1, seed_b)[0], frames, method)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (White 2016): stays on the shell where Gaussian z has its mass; lerp cuts
    through the low-norm middle, which the generator rarely saw."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def walk(a: torch.Tensor, b: torch.Tensor, frames: int, method: str = "slerp") -> torch.Tensor:
    """`frames` points from a to b inclusive, (frames, z_dim)."""
    fn = slerp if method == "slerp" else lerp
    ts = [i / max(frames - 1, 1) for i in range(frames)]
    return torch.cat([fn(a.reshape(1, -1), b.reshape(1, -1), t) for t in ts])


def points_with_data(G, cfg, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(generated, real) 2-D points of a point-set run, n each, for drawing G's samples over the data."""
    from ..data import load_points
    fake = generate(G, noise(cfg, n, seed))
    real = load_points(cfg.dataset).sample(n, torch.Generator().manual_seed(int(seed))).numpy()
    return fake, real


# ---------------------------------------------------------------------- meaningful directions (GANSpace)
@dataclass
class Directions:
    """Principal directions of G's first hidden layer, carried back to z (Härkönen et al. 2020, GANSpace)."""
    vectors: torch.Tensor  # (k, z_dim), unit length: slider value t moves z by t standard deviations of z
    explained: list[float]  # share of that layer's variance along each principal component
    layer: str
    z_std: float  # std of one z coordinate: 1 (Gaussian) or 1/√3 (uniform)


class _Captured(Exception):
    """Raised by a forward hook to stop G once the layer we want has run."""


@torch.no_grad()
def hidden_features(G, z: torch.Tensor, labels=None) -> tuple[torch.Tensor, str]:
    """G's first hidden activation (after its first ReLU-like layer) for each z, flattened; the rest of G is skipped."""
    layer = next((m for m in G.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))), None)
    if layer is None:
        raise ValueError("this generator has no hidden activation to take directions from")
    captured = {}

    def hook(module, inputs, output):
        captured["h"] = output.flatten(1).float().clone()
        raise _Captured

    device = next(G.parameters()).device
    y = None if not G.num_classes else torch.as_tensor(labels if labels is not None else np.arange(len(z)) % G.num_classes).long()
    handle = layer.register_forward_hook(hook)
    was_training = G.training
    G.eval()
    try:
        G(z.to(device), None if y is None else y.to(device))
    except _Captured:
        pass
    finally:
        handle.remove()
        G.train(was_training)
    return captured["h"].cpu(), type(layer).__name__


@torch.no_grad()
def principal_directions(G, cfg, k: int = 8, n: int = 1000, seed: int = 0) -> Directions:
    """PCA of the hidden features of n random z, then the z direction that best produces each component
    (least squares from PCA coordinates to z, as GANSpace does for BigGAN). Ordered by explained variance."""
    z = noise(cfg, n, seed + 424_242)
    h, layer = hidden_features(G, z)
    h = h - h.mean(0)
    k = max(1, min(k, cfg.z_dim, n - 1))
    _, s, v = torch.linalg.svd(h, full_matrices=False)
    coords = h @ v[:k].T  # (n, k) PCA coordinates
    u = torch.linalg.lstsq(coords, z - z.mean(0)).solution  # (k, z_dim): z ≈ coords @ u
    vectors = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    variance = s.pow(2)
    return Directions(vectors, (variance[:k] / variance.sum()).tolist(), layer,
                      1 / math.sqrt(3) if cfg.noise == "uniform" else 1.0)


def along(z: torch.Tensor, directions: Directions, amounts) -> torch.Tensor:
    """z moved by amounts[i] (in standard deviations of z) along each direction."""
    shift = torch.as_tensor(np.asarray(amounts, dtype=np.float32)) @ directions.vectors[:len(amounts)]
    return z + directions.z_std * shift


def direction_strip(G, z: torch.Tensor, directions: Directions, index: int, label=None, frames: int = 5,
                    span: float = 2.5) -> np.ndarray:
    """A preview of one direction: z moved from -span to +span along it, as one row image."""
    amounts = np.zeros((frames, index + 1), dtype=np.float32)
    amounts[:, index] = np.linspace(-span, span, frames)
    zs = torch.cat([along(z, directions, a) for a in amounts])
    labels = None if label is None else np.full(frames, label)
    return to_grid_image(generate(G, zs, labels), frames)


def class_walk(G, z: torch.Tensor, start: int, end: int, frames: int = 8) -> np.ndarray:
    """The same z with the class vector slid from one-hot(start) to one-hot(end): morph a 3 into an 8."""
    if not G.num_classes:
        raise ValueError("this run is not conditional: it has no class vector to walk")
    t = torch.linspace(0, 1, frames).unsqueeze(1)
    eye = torch.eye(G.num_classes)
    soft = (1 - t) * eye[start] + t * eye[end]
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            x = G(z.reshape(1, -1).expand(frames, -1).to(device), soft.to(device)).float().clamp(-1, 1).cpu().numpy()
    finally:
        G.train(was_training)
    return to_grid_image(x, frames)
