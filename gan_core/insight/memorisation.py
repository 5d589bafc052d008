"""Is it copying? Nearest training images of generated samples, in the quality evaluator's feature space.

Why a baseline of fresh real images: a distance means nothing alone. We hold out a few hundred real training
images, measure how close each gets to the rest of the training set, and call a sample suspiciously close
when it is nearer to a training image than 95% of those fresh real images are. A generator that makes new
digits scores about 0.05 or less (real images score exactly that); one that replays its training set scores
near 1.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import load_images, to_unit_range
from ..engine.metrics import Evaluator, EvaluatorError, FeatureExtractor, eval_noise, get_evaluator, supports

HELD_OUT_REAL = 500  # fresh real images that set the baseline
CLOSE_QUANTILE = 0.05  # "suspiciously close" = nearer than this share of fresh real images
_POOLS: OrderedDict = OrderedDict()
_POOLS_LOCK = threading.Lock()


@dataclass
class Memorisation:
    score: float  # share of samples nearer to a training image than 95% of fresh real images are
    real_baseline: float  # what fresh real images score by construction (CLOSE_QUANTILE)
    threshold: float  # that distance
    sample_median: float  # median nearest-training distance of the samples
    real_median: float  # ... and of fresh real images
    num_samples: int
    training_images: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @property
    def verdict(self) -> str:
        if self.score > 4 * self.real_baseline:
            return "copying: many samples are near-duplicates of training images"
        if self.score > 2 * self.real_baseline:
            return "some samples sit unusually close to training images"
        return "no sign of copying: samples are no closer to the training set than new real images are"


@dataclass
class Neighbours:
    """For the panel: rows of [sample, nearest training images...] as one uint8 image, and their distances."""
    image: np.ndarray
    distances: list[list[float]]


@dataclass
class _Pool:
    images: torch.Tensor  # uint8 training images at the run's geometry (without the held-out ones)
    features: torch.Tensor
    real_nearest: torch.Tensor  # held-out real images' nearest distances to `features`


def pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distances (cdist's matmul shortcut turns a true 0 into ~0.02)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


@torch.no_grad()
def features(ev: Evaluator, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Evaluator features (its penultimate layer) of images in [-1, 1] at any geometry."""
    extract = FeatureExtractor(ev.net, ev.size, ev.channels)
    return torch.cat([extract(chunk) for chunk in x.split(batch)])


def _pool(ev: Evaluator, dataset: str, root: str, size: int, channels: int) -> _Pool:
    """The training set's features and the real baseline, once per dataset and geometry (kept for two)."""
    key = (ev.ident, dataset, str(Path(root).resolve()), size, channels)
    with _POOLS_LOCK:
        if key in _POOLS:
            return _POOLS[key]
    images = load_images(dataset, root, size, channels, "cpu").images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    held, rest = order[:min(HELD_OUT_REAL, len(images) // 5)], order[min(HELD_OUT_REAL, len(images) // 5):]
    with torch.no_grad():
        pool_features = features(ev, to_unit_range(images[rest]))
        real_nearest = pairwise(features(ev, to_unit_range(images[held])), pool_features).min(1).values
    pool = _Pool(images[rest], pool_features, real_nearest)
    with _POOLS_LOCK:
        _POOLS[key] = pool
        while len(_POOLS) > 2:
            _POOLS.popitem(last=False)
    return pool


@torch.no_grad()
def check_samples(ev: Evaluator, samples: torch.Tensor, dataset: str, root: str, show: int = 8,
                  neighbours: int = 3) -> tuple[Memorisation, Neighbours]:
    """Score `samples` (float, [-1, 1], the run's geometry) against the training set; the first `show` get
    their `neighbours` nearest training images."""
    size, channels = samples.shape[-1], samples.shape[1]
    pool = _pool(ev, dataset, root, size, channels)
    distances = pairwise(features(ev, samples), pool.features)
    nearest, index = distances.topk(neighbours, dim=1, largest=False)
    threshold = float(torch.quantile(pool.real_nearest, CLOSE_QUANTILE))
    result = Memorisation(
        score=float((nearest[:, 0] < threshold).float().mean()), real_baseline=CLOSE_QUANTILE, threshold=threshold,
        sample_median=float(nearest[:, 0].median()), real_median=float(pool.real_nearest.median()),
        num_samples=len(samples), training_images=len(pool.images))
    rows = []
    for i in range(min(show, len(samples))):
        rows += [samples[i].clamp(-1, 1), *to_unit_range(pool.images[index[i]])]
    from ..engine.pictures import to_grid_image
    grid = to_grid_image(torch.stack(rows).numpy(), nrow=1 + neighbours) if rows else np.zeros((0, 0, 3), np.uint8)
    return result, Neighbours(grid, [[round(float(d), 3) for d in row] for row in nearest[:show]])


def check_run(run_dir, n: int = 500, checkpoint: str | None = None, show: int = 8, log=None) -> tuple[Memorisation, Neighbours]:
    """Memorisation of a run's newest (or named) checkpoint; EvaluatorError (one line) where it does not apply."""
    from ..runs.handle import load_run_generator
    G, cfg, _ = load_run_generator(run_dir, checkpoint)
    if cfg.is_2d or not supports(cfg.dataset):
        raise EvaluatorError(f"run {Path(run_dir).name} trains on {cfg.dataset}: the copying check compares images in "
                             f"the quality evaluator's feature space, which needs a labelled image dataset")
    ev = get_evaluator(cfg.dataset, cfg.data_root, log=log)
    z, labels = eval_noise(cfg, n, seed_offset=5_555_555)
    from ..engine.pictures import generate
    samples = torch.from_numpy(generate(G, z, None if labels is None else labels.numpy()))
    return check_samples(ev, samples, cfg.dataset, cfg.data_root, show)


def memorisation_key(run_dir, n: int, checkpoint: str | None = None) -> dict:
    """The `memorisation` entry of `evaluate`'s JSON."""
    return check_run(run_dir, min(n, 2000), checkpoint, show=0)[0].to_dict()

