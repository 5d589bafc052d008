"""Quality numbers for generated images: a small classifier per labelled dataset, trained once and cached.

Why our own classifier and not Inception: Inception knows nothing about 28×28 digits and is slow on a CPU;
a 98%-accurate digit CNN trains in seconds and its penultimate features do know what a digit looks like.
With it we measure, on N generated samples:
  fid             Fréchet distance of its features, generated vs real (torchmetrics' FID, this net as extractor)
  histogram       predicted classes, and modes_covered = classes holding a fair share of the samples
  confidence      mean top-class probability (low = blurry, ambiguous digits)
  label_accuracy  conditional runs: share of samples classified as the label G was asked for
  diversity       spread of the generated features / spread of the real ones (1 = as varied as the data)
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .. import safe_io
from ..data import DatasetError, dataset_info, load_images, to_unit_range
from ..errors import StudioError

FORMAT = "gan-studio-evaluator/2"  # bump when the network changes: old cache files are then rebuilt
FEATURES = 64  # penultimate width: the space the Fréchet distance is measured in
TRAIN_STEPS = 1200  # Adam steps of 64 digits: ≈ 98.5% held-out accuracy in ~5 s on one CPU thread (both MNISTs)
TRAIN_BATCH = 64
HELD_OUT = 2000  # digits kept out of training to measure accuracy, when the set has no test split of its own
REAL_STATS_IMAGES = 10_000  # real images behind the reference statistics (all of mnist-embedded)
DATA_ERROR_EXIT = 3  # the training child's exit code for "dataset unavailable"
COVERED_SHARE = 0.25  # a class is "covered" when it gets ≥ 25% of its fair share 1/K of the samples


class EvaluatorError(StudioError, RuntimeError):
    """The dataset has no evaluator, or a cached one cannot be read (then it is rebuilt)."""


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_STUDIO_CACHE") or "~/.cache/gan-studio/evaluators").expanduser().resolve()


def evaluator_path(dataset: str) -> Path:
    return cache_dir() / f"{dataset}.safetensors"


def real_stats_path(dataset: str, size: int, channels: int) -> Path:
    return cache_dir() / f"{dataset}.real-{size}x{channels}.safetensors"


def cache_help(dataset: str | None = None) -> str:
    """Where the evaluators live and how to rebuild one, in words the dashboard and CLI can show as is."""
    where = f"Quality evaluators (small digit classifiers, trained once per dataset) are cached in {cache_dir()}"
    name = dataset or "<dataset>"
    return (f"{where}; set the environment variable GAN_STUDIO_CACHE to use another folder. To rebuild "
            f"{'the' if dataset else 'an'} evaluator{' for ' + dataset if dataset else ''}: delete {name}.* in that "
            f"folder (it is retrained at next use), run `python -m gan_core evaluate RUN_DIR --rebuild`, or call "
            f"gan_core.engine.metrics.rebuild_evaluator('{name}').")


def supports(dataset: str) -> bool:
    """Quality metrics need class labels: every labelled image set, no 2-D sets, no image folders."""
    try:
        info = dataset_info(dataset)
    except Exception:
        return False
    return info.kind == "image" and info.num_classes > 0


def evaluator_geometry(dataset: str) -> tuple[int, int]:
    """(size, channels) the classifier sees: the dataset's own, whatever size a run trains at."""
    info = dataset_info(dataset)
    return (32 if dataset == "cifar10" else 28), info.channels


def to_geometry(x: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Float images in [-1, 1] of any size/channels → the classifier's, one batched op (no per-image PIL)."""
    if x.shape[1] != channels:
        if channels == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            x = x.expand(-1, channels, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def build_classifier(channels: int, size: int, num_classes: int) -> nn.Sequential:
    """Two strided convs, a 64-wide feature layer, a linear head: ~0.4 MMAC per digit, yet ~98% accurate.
    (Strided convs instead of conv + max-pool: a third of the compute for half a point of accuracy.)"""
    side = size // 4
    return nn.Sequential(
        nn.Conv2d(channels, 16, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * side * side, FEATURES), nn.ReLU(),
        nn.Linear(FEATURES, num_classes),
    )


class FeatureExtractor(nn.Module):
    """The classifier minus its head, as torchmetrics' FID wants it; keeps its last output so the head can
    reuse it for class probabilities (one forward pass serves both the distance and the histogram)."""

    def __init__(self, net: nn.Sequential, size: int, channels: int):
        super().__init__()
        self.body, self.size, self.channels = net[:-1], size, channels
        self.num_features = FEATURES
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = self.body(to_geometry(x.float(), self.size, self.channels))
        return self.last


@dataclass
class Evaluator:
    dataset: str
    net: nn.Sequential  # eval mode, CPU; `on(device)` gives a copy elsewhere
    accuracy: float  # on held-out images
    train_seconds: float
    trained_on: int
    held_out: int
    size: int
    channels: int
    num_classes: int
    ident: str  # ties cached real statistics to this exact classifier
    path: Path
    _copies: dict = field(default_factory=dict, repr=False)

    def on(self, device) -> nn.Sequential:
        device = torch.device(device)
        if device.type == "cpu":
            return self.net
        if device not in self._copies:
            import copy
            self._copies[device] = copy.deepcopy(self.net).to(device)
        return self._copies[device]

    def describe(self) -> dict:
        return {"dataset": self.dataset, "accuracy": round(self.accuracy, 4), "train_seconds": round(self.train_seconds, 2),
                "trained_on": self.trained_on, "held_out": self.held_out, "path": str(self.path)}


# ---------------------------------------------------------------------- training and the cache
def _splits(dataset: str, root: str):
    """(train images, train labels, held-out images, held-out labels), uint8 at the evaluator geometry.
    mnist tests on its official test set (= mnist-embedded); other sets hold out a fixed random split."""
    size, channels = evaluator_geometry(dataset)
    data = load_images(dataset, root, size, channels, "cpu")
    if dataset == "mnist":
        test = load_images("mnist-embedded", root, size, channels, "cpu")
        return data.images, data.labels, test.images, test.labels
    order = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))
    held = min(HELD_OUT, len(order) // 5)
    test, train = order[:held], order[held:]
    return data.images[train], data.labels[train], data.images[test], data.labels[test]


@torch.no_grad()
def accuracy(net: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor) -> float:
    hits = sum(int((net(to_unit_range(x)).argmax(1) == y).sum()) for x, y in zip(images_u8.split(1000), labels.split(1000)))
    return hits / max(len(labels), 1)


def train_evaluator(dataset: str, root: str = "./data", steps: int | None = None, seed: int = 0) -> Evaluator:
    """Train and cache the evaluator in a child process that uses one CPU thread; here if that fails.

    Why a child: on a busy CPU, one thread trains in ~5 s where two take 30-100 s (OpenMP threads wait for
    each other at every op), and lowering the thread count in this process would also stick to threads that
    start meanwhile, such as another run's trainer."""
    steps = steps or TRAIN_STEPS
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "gan_core.engine.metrics", dataset, os.path.abspath(root), str(steps), str(seed)],
                              env=env, capture_output=True, text=True, timeout=900)
        if done.returncode == 0:
            return load_evaluator(dataset)
        if done.returncode == DATA_ERROR_EXIT:  # the data is missing: retrying here would only fail the same way
            raise DatasetError(done.stderr.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, EvaluatorError):
        pass
    return fit_evaluator(dataset, root, steps, seed)  # also the way to see the child's error, if it had one


def fit_evaluator(dataset: str, root: str = "./data", steps: int | None = None, seed: int = 0) -> Evaluator:
    """Train the classifier in this process (Adam, one-cycle LR, ±2 px shifts), measure held-out accuracy, save."""
    steps = steps or TRAIN_STEPS
    size, channels = evaluator_geometry(dataset)
    info = dataset_info(dataset)
    x_train, y_train, x_test, y_test = _splits(dataset, root)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_classifier(channels, size, info.num_classes)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    order, pos = torch.randperm(len(x_train), generator=g), 0
    for _ in range(steps):
        if pos + TRAIN_BATCH > len(order):
            order, pos = torch.randperm(len(x_train), generator=g), 0
        idx = order[pos:pos + TRAIN_BATCH]
        pos += TRAIN_BATCH
        dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()  # a shift per batch: cheap augmentation
        x = torch.roll(to_unit_range(x_train[idx]), (dy, dx), (2, 3))
        loss = F.cross_entropy(net(x), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval().requires_grad_(False)
    seconds = time.perf_counter() - start
    ev = Evaluator(dataset, net, accuracy(net, x_test, y_test), seconds, len(x_train), len(x_test), size, channels,
                   info.num_classes, uuid.uuid4().hex, evaluator_path(dataset))
    save_evaluator(ev)
    return ev


def save_evaluator(ev: Evaluator) -> None:
    meta = {"format": FORMAT, "dataset": ev.dataset, "accuracy": repr(ev.accuracy), "train_seconds": repr(ev.train_seconds),
            "trained_on": str(ev.trained_on), "held_out": str(ev.held_out), "size": str(ev.size),
            "channels": str(ev.channels), "num_classes": str(ev.num_classes), "ident": ev.ident}
    _save(ev.path, {k: v.contiguous() for k, v in ev.net.state_dict().items()}, meta)


def _save(path: Path, tensors: dict, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialised here and written by safe_io: a full disk is an OSError (errno 28) we can explain, not a
    # SafetensorError, and the temp file goes away; readers never see half a file.
    safe_io.atomic_write(path, safetensors_bytes(tensors, metadata=meta))


def _read(path: Path) -> tuple[dict, dict]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise EvaluatorError(f"{path.name} is not a readable safetensors file ({e})") from None


def load_evaluator(dataset: str) -> Evaluator:
    """The cached evaluator, or EvaluatorError saying why it cannot be used (missing, corrupt, wrong shape)."""
    path = evaluator_path(dataset)
    if not path.is_file():
        raise EvaluatorError(f"no cached evaluator for {dataset} at {path}")
    tensors, meta = _read(path)
    size, channels = evaluator_geometry(dataset)
    num_classes = dataset_info(dataset).num_classes
    if meta.get("format") != FORMAT or meta.get("dataset") != dataset:
        raise EvaluatorError(f"{path.name} is not a GAN Studio evaluator for {dataset}")
    net = build_classifier(channels, size, num_classes)
    try:
        net.load_state_dict(tensors, strict=True)
        acc, seconds = float(meta["accuracy"]), float(meta["train_seconds"])
        trained_on, held_out = int(meta["trained_on"]), int(meta["held_out"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise EvaluatorError(f"{path.name} does not fit the evaluator network ({str(e).splitlines()[0]})") from None
    net.eval().requires_grad_(False)
    return Evaluator(dataset, net, acc, seconds, trained_on, held_out, size, channels, num_classes,
                     meta.get("ident", ""), path)


_EVALUATORS: dict = {}
_LOCKS: dict = {}
_LOCKS_LOCK = threading.Lock()


def _lock(key) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(key, threading.Lock())


def get_evaluator(dataset: str, root: str = "./data", rebuild: bool = False, log=None) -> Evaluator:
    """The evaluator for `dataset`: from memory, else from the cache folder, else trained now (and cached).
    A cache file that cannot be read is reported through `log` and rebuilt."""
    if not supports(dataset):
        raise EvaluatorError(f"quality metrics need a labelled image dataset; {dataset} has no class labels")
    key = (dataset, str(cache_dir()))
    with _lock(key):
        if not rebuild and key in _EVALUATORS:
            return _EVALUATORS[key]
        ev = None
        if not rebuild and evaluator_path(dataset).exists():
            try:
                ev = load_evaluator(dataset)
            except EvaluatorError as e:
                if log:
                    log(f"evaluator cache unusable: {e}; rebuilding it")
        if ev is None:
            if log:
                log(f"training the quality evaluator for {dataset} (first use only, 5-15 s on a CPU); "
                    f"it is cached in {cache_dir()}")
            ev = train_evaluator(dataset, root)
            for stale in cache_dir().glob(f"{dataset}.real-*.safetensors"):
                stale.unlink(missing_ok=True)
        _EVALUATORS[key] = ev
        return ev


def rebuild_evaluator(dataset: str, root: str = "./data") -> Evaluator:
    """Retrain from scratch and overwrite the cache (the dashboard's and `evaluate --rebuild`'s path)."""
    return get_evaluator(dataset, root, rebuild=True)


def forget_loaded() -> None:
    """Drop the in-memory evaluators (the next use reads the cache folder again)."""
    _EVALUATORS.clear()
    _REAL_STATS.clear()


# ---------------------------------------------------------------------- reference statistics of real data
@dataclass
class RealStats:
    """torchmetrics' FID state for the real side: sum, sum of outer products and count of the features."""
    feature_sum: torch.Tensor
    cov_sum: torch.Tensor
    count: int

    def covariance_trace(self) -> float:
        mean = self.feature_sum / self.count
        return float((self.cov_sum.diagonal() - self.count * mean * mean).sum() / (self.count - 1))


_REAL_STATS: dict = {}


def new_fid(ev: Evaluator, device="cpu"):
    from torchmetrics.image.fid import FrechetInceptionDistance
    extractor = FeatureExtractor(ev.on(device), ev.size, ev.channels)
    # sync_on_compute=False: an evaluation is one process's own; under torchrun (DDP) torchmetrics would otherwise
    # gather from every rank, and only rank 0 evaluates (it would wait on, or mix with, training collectives).
    return FrechetInceptionDistance(feature=extractor, reset_real_features=False, sync_on_compute=False).to(device)


@torch.no_grad()
def compute_real_stats(ev: Evaluator, images_u8: torch.Tensor) -> RealStats:
    fid = new_fid(ev)
    for chunk in images_u8.split(1000):
        fid.update(to_unit_range(chunk), real=True)
    return RealStats(fid.real_features_sum.clone(), fid.real_features_cov_sum.clone(), int(fid.real_features_num_samples))


def real_stats(ev: Evaluator, size: int, channels: int, root: str = "./data") -> RealStats:
    """Statistics of up to 10k real images at a run's geometry (computed once, cached next to the evaluator)."""
    key = (ev.ident, size, channels, str(cache_dir()))
    with _lock(key):
        if key in _REAL_STATS:
            return _REAL_STATS[key]
        path = real_stats_path(ev.dataset, size, channels)
        stats = None
        if path.is_file():
            try:
                tensors, meta = _read(path)
                if meta.get("ident") == ev.ident and tensors["sum"].shape == (FEATURES,) \
                        and tensors["cov_sum"].shape == (FEATURES, FEATURES):
                    stats = RealStats(tensors["sum"], tensors["cov_sum"], int(meta["count"]))
            except (EvaluatorError, KeyError, ValueError):
                stats = None
        if stats is None:
            images = load_images(ev.dataset, root, size, channels, "cpu").images
            if len(images) > REAL_STATS_IMAGES:
                images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:REAL_STATS_IMAGES]]
            stats = compute_real_stats(ev, images)
            _save(path, {"sum": stats.feature_sum, "cov_sum": stats.cov_sum},
                  {"format": FORMAT, "ident": ev.ident, "count": str(stats.count)})
        _REAL_STATS[key] = stats
        return stats


# ---------------------------------------------------------------------- measuring generated samples
@dataclass
class EvalResult:
    fid: float
    modes_covered: int
    num_classes: int
    confidence: float
    label_accuracy: float | None  # conditional runs only
    diversity: float
    histogram: list[int]
    num_samples: int

    @property
    def modes_text(self) -> str:
        return f"modes covered: {self.modes_covered}/{self.num_classes}"

    def row(self) -> dict:
        """The metrics.csv columns."""
        return {"fid": self.fid, "modes_covered": self.modes_covered, "confidence": self.confidence,
                "label_accuracy": self.label_accuracy, "diversity": self.diversity}

    def to_dict(self) -> dict:
        return {**asdict(self), "modes_text": self.modes_text}


@torch.no_grad()
def measure(ev: Evaluator, stats: RealStats, samples, requested_labels: torch.Tensor | None = None) -> EvalResult:
    """Metrics of generated images (a tensor, or an iterable of batches, in [-1, 1], any size/channels)."""
    batches = [samples] if torch.is_tensor(samples) else samples
    device = None
    fid = None
    counts = conf_sum = hits = n = 0
    for x in batches:
        if fid is None:
            device = x.device
            fid = new_fid(ev, device)
            fid.real_features_sum.copy_(stats.feature_sum)
            fid.real_features_cov_sum.copy_(stats.cov_sum)
            fid.real_features_num_samples.fill_(stats.count)
            head = ev.on(device)[-1]
        x = torch.nan_to_num(x.float(), nan=0.0).clamp(-1, 1)
        fid.update(x, real=False)
        probs = F.softmax(head(fid.inception.last), 1)
        top, pred = probs.max(1)
        counts = counts + torch.bincount(pred, minlength=ev.num_classes)
        conf_sum = conf_sum + top.sum()
        if requested_labels is not None:
            hits = hits + (pred == requested_labels[n:n + len(x)].to(device)).sum()
        n += len(x)
    if fid is None or n < 2:
        raise ValueError(f"need at least 2 samples to measure, got {n}")
    hist = counts.tolist()
    fake_count = int(fid.fake_features_num_samples)
    fake = RealStats(fid.fake_features_sum, fid.fake_features_cov_sum, fake_count)
    return EvalResult(
        fid=max(0.0, float(fid.compute())),
        modes_covered=sum(c >= COVERED_SHARE * n / ev.num_classes for c in hist), num_classes=ev.num_classes,
        confidence=float(conf_sum) / n, label_accuracy=None if requested_labels is None else float(hits) / n,
        diversity=fake.covariance_trace() / max(stats.covariance_trace(), 1e-12), histogram=hist, num_samples=n)


def eval_noise(cfg, n: int, seed_offset: int = 7_777_777) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fixed z (and balanced labels) per run, so successive evaluations differ only by G's weights."""
    from .pictures import noise
    labels = (torch.arange(n) % dataset_info(cfg.dataset).num_classes) if cfg.conditional else None
    return noise(cfg, n, cfg.seed + seed_offset), labels


@torch.no_grad()
def evaluate_generator(G: nn.Module, ev: Evaluator, stats: RealStats, z: torch.Tensor, labels=None,
                       batch: int = 250) -> EvalResult:
    """Run G (eval mode) on z in batches and measure what comes out."""
    weight = next(iter(G.parameters()), None)
    device = weight.device if weight is not None else torch.device("cpu")
    conditional = bool(getattr(G, "num_classes", 0)) and labels is not None
    was_training = G.training
    G.eval()
    try:
        def samples():
            for i in range(0, len(z), batch):
                y = labels[i:i + batch].to(device) if conditional else None
                yield G(z[i:i + batch].to(device), y).float()
        return measure(ev, stats, samples(), labels if conditional else None)
    finally:
        G.train(was_training)


if __name__ == "__main__":  # the child process of train_evaluator: DATASET ROOT STEPS SEED
    try:
        fit_evaluator(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    except DatasetError as e:
        print(e, file=sys.stderr)
        sys.exit(DATA_ERROR_EXIT)
