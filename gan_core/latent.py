"""Sampling from a trained generator: seeded noise, lerp/slerp walks, images for the latent explorer and CLI."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from . import runfiles as rf
from .checkpoint import CheckpointError, load_generator
from .gan import sample_noise


def noise(cfg, n: int, seed: int) -> torch.Tensor:
    """z for `seed`, on the CPU so the same seed gives the same z on any device."""
    return sample_noise(n, cfg.z_dim, cfg.noise, torch.Generator().manual_seed(int(seed)), "cpu")


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


def points_with_data(G, cfg, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(generated, real) 2-D points of a point-set run, n each, for drawing G's samples over the data."""
    from .data import load_points
    fake = generate(G, noise(cfg, n, seed))
    real = load_points(cfg.dataset).sample(n, torch.Generator().manual_seed(int(seed))).numpy()
    return fake, real


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


def run_checkpoint(run_dir: str | Path, checkpoint: str | None = None) -> Path:
    """The checkpoint file to use: `checkpoint` (a name inside the run) or the newest."""
    run_dir = Path(run_dir)
    ckpts = rf.list_checkpoints(run_dir)
    if checkpoint:
        names = {p.name: p for p in ckpts}
        if checkpoint not in names:
            raise CheckpointError(f"{checkpoint}: not a checkpoint of run {run_dir.name}")
        return names[checkpoint]
    if not ckpts:
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir}: no such run folder")
        raise CheckpointError(f"run {run_dir.name} has no checkpoint yet (one is written every checkpoint_every steps)")
    return ckpts[-1]


def load_uploaded_generator(data: bytes, name: str = "upload", device="cpu"):
    """(G, RunConfig, step) from the bytes of an uploaded checkpoint, through the same checks as any load. The
    temp file gets a fixed name (an upload's own may be 300 characters long, or anything); messages use `name`."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.safetensors"
        path.write_bytes(data)
        try:
            G, cfg, meta = load_generator(path, device)
        except CheckpointError as e:
            shown = Path(name).name[:60] + ("…" if len(Path(name).name) > 60 else "")
            raise CheckpointError(str(e).replace(path.name, shown, 1)) from None
    return G, cfg, int(meta.get("step", 0))


def load_run_generator(run_dir, checkpoint: str | None = None, device="cpu"):
    """(G, RunConfig, step) from a run folder's newest (or named) checkpoint."""
    G, cfg, meta = load_generator(run_checkpoint(run_dir, checkpoint), device)
    return G, cfg, int(meta.get("step", 0))
