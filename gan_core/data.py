"""Dataset registry: image sets held once as a uint8 tensor on the training device, and 2-D point sets.

Why uint8 on the device: the tutorials' DataLoader + per-item PIL transforms is where their time goes.
Here a batch is one index into a resident tensor and one fused normalise, with no host round trip.
"""
from __future__ import annotations

import gzip
import math
import os
import shutil
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from pickle import Unpickler, UnpicklingError
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import StudioError

ASSETS = Path(__file__).parent / "assets"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_FOLDER_IMAGES = 100_000
# One image file is skipped above these: a training image is downscaled to ≤ 256 px anyway, and a tiny PNG can
# claim a huge canvas (a decompression bomb), so pixels are checked from the header before anything is decoded.
MAX_IMAGE_FILE_BYTES = 50 * 2**20
MAX_IMAGE_PIXELS = 40_000_000
# All files together: decoding stops after this many pixels (1,000 files of 40 MP would take ~25 min; a folder of
# 100,000 photos of 640×480 is 31 G pixels but JPEG draft mode decodes them at a fraction of full size).
MAX_FOLDER_PIXELS = 2_000_000_000
# torchvision passes no timeout to urlopen: on a network that silently drops packets a download would wait for
# minutes per file and mirror. Every connect/read waits at most this long instead.
DOWNLOAD_STALL_SECONDS = 30.0
_DOWNLOAD_LOCK = threading.Lock()


class DatasetError(StudioError, RuntimeError):
    """A dataset that cannot be loaded; the message says what to do about it."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str  # "image" or "points"
    channels: int  # 0 for point sets
    num_classes: int  # 0 = no labels
    description: str
    load: Callable = field(repr=False, compare=False)
    needs_data_root: bool = False  # reads or downloads into data_root (the Train form shows that field only then)
    at_size: bool = False  # load(root, channels, size) reads each file straight to the training size (big photos)


@dataclass
class ImageData:
    """All images of a set as uint8 (N, C, H, W) plus int64 labels (or None), on one device."""
    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self):
        return tuple(self.images.shape[1:])

    def to(self, device) -> "ImageData":
        labels = None if self.labels is None else self.labels.to(device)
        return ImageData(self.images.to(device), labels, self.num_classes, self.notes)


def to_unit_range(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], the range of G's tanh output."""
    return images_u8.float().mul_(2.0 / 255.0).sub_(1.0)


class ImageBatches:
    """Endless shuffled batches from an ImageData, epoch by epoch, without leaving the device."""

    def __init__(self, data: ImageData, generator: torch.Generator):
        self.data, self.generator = data, generator
        self.order = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def sample(self, batch_size: int):
        n = self.data.images.shape[0]
        if self.pos + batch_size > self.order.numel():
            self.order = torch.randperm(n, generator=self.generator, device=self.generator.device).to(self.data.images.device)
            self.pos = 0
            if batch_size > n:  # tiny folders: sample with replacement
                self.order = torch.randint(n, (batch_size,), generator=self.generator,
                                           device=self.generator.device).to(self.data.images.device)
        idx = self.order[self.pos:self.pos + batch_size]
        self.pos += batch_size
        labels = None if self.data.labels is None else self.data.labels[idx]
        return to_unit_range(self.data.images[idx]), labels


# ---------------------------------------------------------------------- 2-D point sets
@dataclass
class PointSet:
    """A 2-D distribution. Mixtures carry their mode centres and σ (for mode-coverage metrics)."""
    name: str
    sampler: Callable[[int, torch.Generator], torch.Tensor] = field(repr=False)
    centres: torch.Tensor | None = None
    sigma: float | None = None
    extent: float = 2.5  # half-width of the square the plots show

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sampler(n, generator)


class PointBatches:
    """Fresh points every batch (the data is a distribution, not a finite set)."""

    def __init__(self, points: PointSet, generator: torch.Generator, device):
        self.points, self.generator, self.device = points, generator, device

    def sample(self, batch_size: int):
        return self.points.sample(batch_size, self.generator).to(self.device), None


def _randn(n, g, *shape):
    return torch.randn(n, *shape, generator=g, device=g.device)


def _rand(n, g, *shape):
    return torch.rand(n, *shape, generator=g, device=g.device)


def mixture(name: str, centres, sigma: float, extent: float) -> PointSet:
    centres = torch.tensor(centres, dtype=torch.float32)

    def sampler(n, g):
        pick = torch.randint(len(centres), (n,), generator=g, device=g.device)
        return centres.to(g.device)[pick] + sigma * _randn(n, g, 2)

    return PointSet(name, sampler, centres, sigma, extent)


def ring_8(radius: float = 2.0, sigma: float = 0.02) -> PointSet:
    angles = [2 * math.pi * k / 8 for k in range(8)]
    return mixture("ring-8", [[radius * math.cos(a), radius * math.sin(a)] for a in angles], sigma, radius * 1.5)


def grid_25(spacing: float = 2.0, sigma: float = 0.05) -> PointSet:
    ticks = [spacing * i for i in (-2, -1, 0, 1, 2)]
    return mixture("grid-25", [[x, y] for x in ticks for y in ticks], sigma, spacing * 3)


def spiral(noise: float = 0.05) -> PointSet:
    def sampler(n, g):
        t = 1.5 * math.pi * (1 + 2 * _rand(n, g))  # the swiss-roll parametrisation, scaled to radius ≈ 2
        xy = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 7.0
        return xy + noise * _randn(n, g, 2)
    return PointSet("spiral", sampler, extent=2.5)


def two_moons(noise: float = 0.05) -> PointSet:
    def sampler(n, g):
        theta = math.pi * _rand(n, g)
        upper = _rand(n, g) < 0.5
        x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
        y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
        xy = torch.stack([x - 0.5, y - 0.25], 1) * 1.5  # centred, as sklearn's make_moons but scaled to ±2
        return xy + noise * _randn(n, g, 2)
    return PointSet("two-moons", sampler, extent=2.5)


def line(noise: float = 0.02) -> PointSet:
    def sampler(n, g):
        x = 4 * _rand(n, g) - 2
        return torch.stack([x, 0.5 * x], 1) + noise * _randn(n, g, 2)
    return PointSet("line", sampler, extent=2.5)


def points_from_array(xy, name: str = "custom") -> PointSet:
    """The user's own points (CSV upload, clicks): resampled with a little jitter."""
    pts = torch.as_tensor(np.asarray(xy, dtype=np.float32))
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
        raise DatasetError(f"custom points need at least 2 rows of x, y; got an array of shape {tuple(pts.shape)}")
    if not torch.isfinite(pts).all():
        raise DatasetError("custom points contain NaN or infinite values")
    extent = float(pts.abs().max()) * 1.25 + 0.1

    def sampler(n, g):
        pick = torch.randint(len(pts), (n,), generator=g, device=g.device)
        return pts.to(g.device)[pick] + 0.01 * extent * _randn(n, g, 2)
    return PointSet(name, sampler, extent=extent)


# ---------------------------------------------------------------------- image loaders
def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format: magic, dims, then raw uint8 data), gzipped or not. An exported script
    (runs/export.py) carries this very function."""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_embedded(root: str) -> ImageData:
    images = read_idx(ASSETS / "mnist-t10k-images-idx3-ubyte.gz")
    labels = read_idx(ASSETS / "mnist-t10k-labels-idx1-ubyte.gz")
    return ImageData(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)), 10)


class CifarArrays(Unpickler):
    """The official CIFAR-10 files are pickles: rebuild only the numpy arrays, lists and dicts they hold; any other
    object (a pickle can name any callable) is refused, so a planted file cannot run code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # bytes in protocol-2 pickles

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise UnpicklingError(f"{module}.{name} is not part of a CIFAR-10 batch")
        return super().find_class(module, name)


def read_cifar_batches(folder) -> tuple[np.ndarray, list[int]]:
    """CIFAR-10's five training batches in `folder` (torchvision's cifar-10-batches-py): (N, 3, 32, 32) uint8 images
    and their labels, read through CifarArrays. An exported script carries this very function."""
    parts = []
    for i in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{i}"), "rb") as f:
            parts.append(CifarArrays(f, encoding="latin1").load())
    return np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32), sum((p["labels"] for p in parts), [])


def _open_torchvision(cls, root: str, label: str, folder_name: str, files: str = "files", **kwargs):
    """A torchvision dataset from `root`, downloaded when missing; offline, a DatasetError naming the folder."""
    folder = os.path.join(os.path.abspath(root), folder_name)
    try:
        return cls(root, download=False, **kwargs)
    except RuntimeError:
        created = [_first_missing(os.path.abspath(root)), folder]  # every folder a failed download would leave
        try:
            return _download(cls, root, **kwargs)
        except Exception as e:  # offline, blocked, disk full...
            for path in created:  # leave the data root as it was: no empty or half-downloaded folder
                shutil.rmtree(path, ignore_errors=True)
            lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
            reason = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"  # torchvision: the last mirror's error
            raise DatasetError(
                f"{label} is not in {folder} and could not be downloaded ({reason}). Put the {label} {files} in "
                f"{folder} (torchvision's layout), pass a different --data-root, or use the offline dataset "
                f"`mnist-embedded`.") from None


def _torchvision_loader(class_name: str, label: str, folder_name: str):
    def load(root: str) -> ImageData:
        import torchvision.datasets as tvd
        ds = _open_torchvision(getattr(tvd, class_name), root, label, folder_name, train=True)
        data = torch.as_tensor(np.asarray(ds.data))
        data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
        return ImageData(data.contiguous(), labels, 10)
    return load


def _first_missing(path: str) -> str:
    """The outermost folder of `path` that does not exist yet (`path` itself when its parent exists)."""
    while not os.path.exists(os.path.dirname(path)) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _image_files(folder: Path) -> tuple[list[Path], int]:
    """(files under `folder`, sorted; number of subfolders that could not be read). Links to folders are not
    followed (no loops) and an unreadable subfolder is counted, never fatal."""
    unreadable = [0]

    def skip(error: OSError) -> None:
        unreadable[0] += 1

    files = []
    for here, _dirs, names in os.walk(folder, onerror=skip):
        files.extend(Path(here) / n for n in names)
        if len(files) > 4 * MAX_FOLDER_IMAGES:
            break
    return sorted(files), unreadable[0]


def _download(cls, root: str, **kwargs):
    """A torchvision download with every socket wait bounded by DOWNLOAD_STALL_SECONDS. The default socket
    timeout is process-wide, so downloads take turns under a lock and the old default is restored after."""
    with _DOWNLOAD_LOCK:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_STALL_SECONDS)
        try:
            return cls(root, download=True, **kwargs)
        finally:
            socket.setdefaulttimeout(old)


def centre_square(path: Path, mode: str, size: int) -> tuple[np.ndarray | None, int]:
    """(The largest centred square of an image file, resized to size×size (HWC uint8), or None when the file is
    over the size limits; the pixels decoded). Raises what PIL raises for an unreadable file."""
    from PIL import Image
    if not path.is_file() or path.stat().st_size > MAX_IMAGE_FILE_BYTES:
        return None, 0
    with Image.open(path) as img:
        if img.width * img.height > MAX_IMAGE_PIXELS:
            return None, 0
        img.draft("RGB" if mode == "RGB" else "L", (size, size))  # JPEG: decode at a reduced scale, still ≥ size
        decoded = img.width * img.height
        img = img.convert(mode)
        w, h = img.size
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        img = img.resize((size, size), Image.Resampling.BICUBIC, box=box)
        return np.asarray(img, dtype=np.uint8).reshape(size, size, -1), decoded


def load_image_folder(root: str, channels: int = 3, size: int = 64) -> ImageData:
    """Every readable image under `root`, centre-cropped and resized once at load (never in the training loop)."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(root)
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder.resolve()} does not exist; set data_root to a folder of images")
    files, unreadable_folders = _image_files(folder)
    mode = "L" if channels == 1 else "RGB"
    arrays, skipped, too_big, decoded = [], 0, 0, 0
    for path in files:
        if len(arrays) >= MAX_FOLDER_IMAGES or decoded >= MAX_FOLDER_PIXELS:
            break
        try:
            array, pixels = centre_square(path, mode, size)
            decoded += pixels
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            skipped += 1
            continue
        if array is None:
            too_big += 1
        else:
            arrays.append(array)
    skipped += too_big
    limits = []
    if unreadable_folders:
        limits.append(f"{unreadable_folders} unreadable subfolder{'s' * (unreadable_folders > 1)} skipped")
    if decoded >= MAX_FOLDER_PIXELS:
        limits.append(f"stopped after decoding {MAX_FOLDER_PIXELS // 10**6:,} megapixels in all")
    oversized = f" ({too_big} larger than {MAX_IMAGE_FILE_BYTES // 2**20} MB or {MAX_IMAGE_PIXELS // 10**6} megapixels)" \
        if too_big else ""
    if not arrays:
        raise DatasetError(f"no readable images in {folder.resolve()} ({len(files)} files looked at, {skipped} unreadable"
                           f"{oversized}); supported: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    notes = [f"image-folder: loaded {len(arrays)} images from {folder.resolve()}, skipped {skipped} unreadable files"
             f"{oversized}" + "".join(f"; {x}" for x in limits)]
    return ImageData(images, None, 0, notes)


CELEBA_FILES = "img_align_celeba/ folder and its list_*.txt and identity_CelebA.txt files"


def _celeba_class():
    """torchvision's CelebA, checking that its files are there rather than their checksums: the aligned set
    copied from elsewhere (or a small stand-in) loads the same way, and only torchvision's own download is verified."""
    import torchvision.datasets as tvd

    class CelebAFiles(tvd.CelebA):
        def _check_integrity(self) -> bool:
            folder = os.path.join(self.root, self.base_folder)
            return all(os.path.isfile(os.path.join(folder, name)) for _, _, name in self.file_list[1:]) and \
                os.path.isdir(os.path.join(folder, "img_align_celeba"))

        def download(self) -> None:
            if not self._check_integrity():
                tvd.CelebA.download(self)

    return CelebAFiles


def load_celeba(root: str, channels: int = 3, size: int = 64) -> ImageData:
    """CelebA's aligned training faces (178×218), each centre-cropped to a square and resized to `size` as it is
    read, a few threads at a time (decoding 160k JPEGs is the slow part)."""
    from concurrent.futures import ThreadPoolExecutor

    ds = _open_torchvision(_celeba_class(), root, "CelebA", "celeba", files=CELEBA_FILES, split="train", target_type=[])
    folder = Path(ds.root) / ds.base_folder / "img_align_celeba"
    mode = "L" if channels == 1 else "RGB"
    from PIL import Image, UnidentifiedImageError

    def read(name: str) -> np.ndarray | None:
        try:
            return centre_square(folder / name, mode, size)[0]
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return None

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = [a for a in pool.map(read, ds.filename) if a is not None]
    if not arrays:
        raise DatasetError(f"no readable CelebA training images in {folder} ({len(ds.filename)} listed in "
                           f"list_eval_partition.txt)")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    skipped = f", skipped {len(ds.filename) - len(arrays)} unreadable files" if len(arrays) < len(ds.filename) else ""
    return ImageData(images, None, 0, [f"celeba: loaded {len(arrays)} aligned training faces from {folder}{skipped}"])


# ---------------------------------------------------------------------- registry
DATASETS: dict[str, DatasetInfo] = {
    "mnist-embedded": DatasetInfo("mnist-embedded", "image", 1, 10, "The 10,000 MNIST test digits shipped inside the package "
                                  "(LeCun & Cortes, CC BY-SA 3.0). Works offline.", load_mnist_embedded),
    "mnist": DatasetInfo("mnist", "image", 1, 10, "MNIST's 60,000 training digits (torchvision download).",
                         _torchvision_loader("MNIST", "MNIST", "MNIST"), needs_data_root=True),
    "fashion-mnist": DatasetInfo("fashion-mnist", "image", 1, 10, "Fashion-MNIST: 60,000 clothing images (torchvision download).",
                                 _torchvision_loader("FashionMNIST", "Fashion-MNIST", "FashionMNIST"), needs_data_root=True),
    "cifar10": DatasetInfo("cifar10", "image", 3, 10, "CIFAR-10: 50,000 32×32 colour photos (torchvision download).",
                           _torchvision_loader("CIFAR10", "CIFAR-10", "cifar-10-batches-py"), needs_data_root=True),
    "celeba": DatasetInfo("celeba", "image", 3, 0, "CelebA: 162,770 aligned celebrity faces, centre-cropped and resized "
                          "(torchvision's layout in data_root/celeba; its download needs the gdown package).",
                          load_celeba, needs_data_root=True, at_size=True),
    "image-folder": DatasetInfo("image-folder", "image", 3, 0, "Your own folder of images (data_root), centre-cropped and resized.",
                                load_image_folder, needs_data_root=True, at_size=True),
    "ring-8": DatasetInfo("ring-8", "points", 0, 0, "8 Gaussians on a circle of radius 2, σ = 0.02.", ring_8),
    "grid-25": DatasetInfo("grid-25", "points", 0, 0, "25 Gaussians at {-4, -2, 0, 2, 4}², σ = 0.05.", grid_25),
    "spiral": DatasetInfo("spiral", "points", 0, 0, "A noisy 2-D spiral (swiss roll).", spiral),
    "two-moons": DatasetInfo("two-moons", "points", 0, 0, "Two interleaving half circles.", two_moons),
    "line": DatasetInfo("line", "points", 0, 0, "Points on a line segment.", line),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


def _resize(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Whole-tensor channel conversion and resize, done once at load."""
    if images.shape[1] != channels:
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        else:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    out = []
    for chunk in images.split(4096):
        x = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def load_images(name: str, root: str, size: int, channels: int, device="cpu") -> ImageData:
    """The image set `name` at `size`×`size` with `channels`, on `device`; cached per process."""
    info = dataset_info(name)
    if info.kind != "image":
        raise DatasetError(f"{name} is a 2-D point set, not images")
    key = (name, os.path.abspath(root), size, channels, str(device))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    if info.at_size:
        data = info.load(root, channels, size)
    else:
        data = info.load(root)
        data = ImageData(_resize(data.images, size, channels), data.labels, data.num_classes, data.notes)
    data = data.to(device)
    with _CACHE_LOCK:
        _CACHE[key] = data
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return data


def load_points(name: str) -> PointSet:
    info = dataset_info(name)
    if info.kind != "points":
        raise DatasetError(f"{name} holds images, not 2-D points")
    return info.load()
