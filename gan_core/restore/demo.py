"""What the Restore page shows, computed here so the page only draws: numpy in, numpy and numbers out.

One call damages the truth, restores it, runs the naive repair beside it, and scores all three."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.memory import release_freed_memory
from ..engine.pictures import to_gif, to_grid_image
from .damage import apply_mask, downsample
from .prior import SearchSettings
from .restorer import RestoreError, Restorer, baseline, mean_image, psnr, read_digits, restore

MAX_PAGE_IMAGES = 64
MAX_PICTURE_MB = 10  # an uploaded picture: a phone photo is 2-8 MB; the server's own upload limit is 200 MB
MAX_PICTURE_PIXELS = 16_000_000  # decoded as 8-bit RGB that is 48 MB, released once it is shrunk to the run's size
BASELINE_NAME = {"inpaint": "mean fill", "superres": "bicubic"}


@dataclass
class Demo:
    task: str
    method: str  # "prior" or "trained"
    rows: dict  # row name → (N, C, H, W) float32 in [-1, 1]: damaged, naive repair, restored, truth
    table: list  # per method: PSNR against the truth, digits the evaluator reads, share right
    losses: list = field(default_factory=list)  # the prior search's loss per iteration
    frames: list = field(default_factory=list)  # (iteration, (n, C, H, W) float32) as the search converges
    seconds: float = 0.0

    def grid(self) -> np.ndarray:
        """One uint8 image: a row per stage (damaged | naive | restored | truth), a column per image."""
        x = np.concatenate(list(self.rows.values()))
        return to_grid_image(x, nrow=len(next(iter(self.rows.values()))))

    def frame_images(self) -> list[tuple[int, np.ndarray]]:
        return [(it, to_grid_image(x, nrow=len(x))) for it, x in self.frames]

    def gif(self, scale: int = 3) -> bytes:
        frames = [img for _, img in self.frame_images()]
        return to_gif(frames + frames[-1:] * 4, duration_ms=150, scale=scale)  # linger on the result


def test_images(restorer: Restorer, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """n images (and labels) of the run's own data set, a seeded random pick."""
    from ..data import load_images, to_unit_range
    data = load_images(restorer.cfg.dataset, restorer.cfg.data_root, restorer.size, restorer.channels)
    pick = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(seed))[:n]
    labels = None if data.labels is None else data.labels[pick].numpy()
    return to_unit_range(data.images[pick]).numpy(), labels


def image_from_png(data: bytes, restorer: Restorer, max_pixels: int = MAX_PICTURE_PIXELS) -> np.ndarray:
    """An uploaded picture as one image the run can restore: centre-cropped, resized, dark ink on light paper
    turned into MNIST's light ink on dark when the run's images are grey. Only the small image is returned; the
    decoded picture's memory goes back to the system (it was freed in a script thread's own malloc arena)."""
    if len(data) > MAX_PICTURE_MB * 2**20:
        raise RestoreError(f"the picture is {len(data) / 2**20:.1f} MB; the limit is {MAX_PICTURE_MB} MB (a PNG or "
                           f"JPEG of a few MB is plenty: it is shrunk to {restorer.size}×{restorer.size})")
    try:
        return _decode_picture(data, restorer, max_pixels)
    finally:
        release_freed_memory()


def _decode_picture(data: bytes, restorer: Restorer, max_pixels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise RestoreError(f"the picture has {img.width}×{img.height} pixels, more than {max_pixels:,}")
            img = img.convert("L" if restorer.channels == 1 else "RGB")
            w, h = img.size
            side = min(w, h)
            box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            img = img.resize((restorer.size, restorer.size), Image.Resampling.BICUBIC, box=box)
            x = np.asarray(img, dtype=np.float32).reshape(restorer.size, restorer.size, -1) / 127.5 - 1
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise RestoreError(f"not a readable picture ({type(e).__name__})") from None
    x = x.transpose(2, 0, 1)[None]
    if restorer.channels == 1 and x.mean() > 0:
        x = -x
    return x.astype(np.float32)


def to_full_size(low: torch.Tensor, factor: int) -> torch.Tensor:
    """Low-res images shown at full size, pixel blocks visible (what the restorer was given)."""
    return F.interpolate(low, scale_factor=factor, mode="nearest")


def run_demo(restorer: Restorer, task: str, truth: np.ndarray, labels: np.ndarray | None = None,
             mask: np.ndarray | None = None, factor: int = 4, settings: SearchSettings | None = None,
             on_progress=None) -> Demo:
    """Damage `truth` ((N, C, H, W) in [-1, 1]), restore it, repair it naively, and score both."""
    start = time.perf_counter()
    x = torch.from_numpy(np.asarray(truth, dtype=np.float32))[:MAX_PAGE_IMAGES]
    m = None if mask is None else torch.from_numpy(np.asarray(mask, dtype=np.float32))[:len(x)]
    if task == "inpaint" and (m is None or not (m < 0.5).any()):
        raise RestoreError("the mask hides no pixel: pick a mask, or paint some holes with the brush")
    if task == "inpaint":
        given, shown = apply_mask(x, m), apply_mask(x, m)
        naive = baseline(task, given, m, mean=mean_image(restorer))
    else:
        given = downsample(x, factor, restorer.cfg.downsample if restorer.method == "trained" else "area")
        shown, naive = to_full_size(given, factor), baseline(task, given, factor=factor)
    settings = settings or SearchSettings(frame_images=min(len(x), 16))
    result = restore(restorer, task, given, m, factor, settings, on_progress)
    hole = None if m is None else 1 - m
    table = []
    for name, images in ((BASELINE_NAME[task], naive), (restorer.method, result.images)):
        row = {"method": name, "PSNR (dB)": round(psnr(images, x, hole), 2)}
        try:
            digits = read_digits(images, restorer.cfg.dataset, restorer.cfg.data_root)
            row["digits read"] = " ".join(map(str, digits.tolist()[:16]))
            if labels is not None:
                row["right"] = f"{int((digits.numpy() == np.asarray(labels)[:len(x)]).sum())}/{len(x)}"
        except Exception:  # an unlabelled data set (image folder) has no evaluator: no digits to read
            pass
        table.append(row)
    rows = {"damaged": shown, BASELINE_NAME[task]: naive, "restored": result.images, "truth": x}
    return Demo(task, restorer.method, {k: v.numpy() for k, v in rows.items()}, table, result.losses,
                [(it, f.numpy()) for it, f in result.frames], time.perf_counter() - start)
