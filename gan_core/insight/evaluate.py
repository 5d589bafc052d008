"""Judging a finished run from its folder: quality of a generator, repair scores of a restorer, the health
diagnosis."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data import dataset_info
from ..engine.metrics import EvaluatorError, eval_noise, evaluate_generator, get_evaluator, real_stats, supports
from ..restore.damage import apply_mask, downsample, make_mask
from ..restore.restorer import baseline, mean_image, restore, scores
from ..runs.handle import load_restorer
from ..runs.timeline import as_of, check_step
from .health import Diagnosis
from .diagnosis import diagnose_snapshot


def evaluate_run(run_dir, n: int = 1000, checkpoint: str | None = None, rebuild: bool = False, log=None) -> dict:
    """Metrics of a run's newest (or named) checkpoint: what `python -m gan_core evaluate` prints."""
    from ..models import image_size_for
    from ..runs.handle import load_run_generator
    G, cfg, step = load_run_generator(run_dir, checkpoint)
    if cfg.is_2d or not supports(cfg.dataset):
        raise EvaluatorError(f"run {Path(run_dir).name} trains on {cfg.dataset}: quality metrics need a labelled image dataset")
    ev = get_evaluator(cfg.dataset, cfg.data_root, rebuild=rebuild, log=log)
    z, labels = eval_noise(cfg, n)
    stats = real_stats(ev, image_size_for(cfg), cfg.channels or dataset_info(cfg.dataset).channels, cfg.data_root)
    result = evaluate_generator(G, ev, stats, z, labels)
    return {"run_dir": str(Path(run_dir).resolve()), "step": step, "dataset": cfg.dataset, **result.to_dict(),
            "evaluator": ev.describe()}


def evaluation_images(cfg, size: int, channels: int, n: int, root: str | None = None):
    """n images a restorer is measured on, with labels, and whether it never trained on them: MNIST's 60k training
    split for runs on the embedded 10k test set (when it can be read), else a fixed pick of the run's own set."""
    from ..data import DatasetError, load_images, to_unit_range
    unseen = cfg.dataset == "mnist-embedded"
    try:
        data = load_images("mnist" if unseen else cfg.dataset, root or cfg.data_root, size, channels)
    except DatasetError:
        unseen = False
        data = load_images(cfg.dataset, cfg.data_root, size, channels)
    pick = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(15))[:n]
    return to_unit_range(data.images[pick]), None if data.labels is None else data.labels[pick], unseen


def evaluate_restorer(run_dir, n: int = 1000, checkpoint: str | None = None, root: str | None = None) -> dict:
    """`python -m gan_core evaluate` for a restorer run: PSNR (on the holes for inpainting), SSIM and the share of
    restorations the quality evaluator reads as the right class, beside the naive repair's."""
    restorer = load_restorer(run_dir, checkpoint)
    cfg = restorer.cfg
    truth, labels, unseen = evaluation_images(cfg, restorer.size, restorer.channels, n, root)
    mask = make_mask(cfg.mask if cfg.mask != "mixed" else "centre", len(truth), restorer.size, seed=15) \
        if cfg.task == "inpaint" else None
    given = apply_mask(truth, mask) if mask is not None else downsample(truth, cfg.factor, cfg.downsample)
    out = {"run_dir": str(Path(run_dir).resolve()), "step": restorer.step, "dataset": cfg.dataset, "task": cfg.task,
           "n": len(truth), "unseen_images": unseen}
    for name, images in (("trained", restore(restorer, cfg.task, given, mask, cfg.factor).images),
                         ("mean fill" if mask is not None else "bicubic",
                          baseline(cfg.task, given, mask, cfg.factor, mean_image(restorer)))):
        numbers = scores(images, truth, labels, mask, cfg.dataset, cfg.data_root)
        if mask is not None:
            numbers["psnr"] = numbers.pop("psnr_hole")
        if name == "trained":
            out.update(numbers)
        else:
            out["baseline"] = {"method": name, **numbers}
    return out


def diagnose_run(run_dir, step: int | None = None) -> Diagnosis:
    """The main finding for a run folder (what `python -m gan_core diagnose RUN_DIR` prints); with `step`, the
    finding as it stood then (what Monitor's timeline shows at that step)."""
    from ..runs.store import RunStore
    path = Path(run_dir).resolve()
    if not (path / "config.json").is_file():
        raise KeyError(f"{run_dir}: not a run folder (no config.json)")
    store = RunStore(path.parent)
    snap = store.snapshot(path.name, max_points=100_000)
    if step is not None:
        snap = as_of(snap, check_step(step, snap.step, f"run {path.name}"))
    return diagnose_snapshot(snap)[0]
