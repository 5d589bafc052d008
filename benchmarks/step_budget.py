"""Quality on STEP budgets: a preset (plus setting changes) trained for each budget of iterations and scored as
`throughput.py --sections quality` scores a run (the evaluator trained on MNIST's 60k, FD over 1,000 samples, the
sampler: EMA weights when on). A step budget means the same on a busy machine as on a quiet one, so schedules can be
compared while other work shares the CPU; convert to seconds with the steps/s a machine makes.

Variants that differ only in their decay are the same run until the decay begins, so each seed trains one trunk with
constant rates and forks it (weights, optimisers, EMA, data order, random stream) where each budget's decay begins:
the same iterations as separate runs, fewer of them computed.

    python benchmarks/step_budget.py --steps 500,800,1600 --seeds 0,1,2 --variant '{"lr_decay": 0}' \\
        --variant '{"lr_decay": 0.5}'
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gan_core import build_config  # noqa: E402
from gan_core.engine import metrics  # noqa: E402
from gan_core.engine.gan import GAN, lr_factor  # noqa: E402
from gan_core.engine.trainer import Trainer  # noqa: E402

DECAY_KEYS = ("lr_decay", "lr_decay_after", "lr_floor")  # variants differing only here share a trunk
TRIAL_KNOBS = ("lr_floor", "ema_warmup")  # screening knobs not in RunConfig, set on the GAN object (install_trials)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def trial_lr_factor(progress: float, decay: float, floor: float, begin: float = 0.0) -> float:
    return floor + (1 - floor) * lr_factor(progress, decay, begin)


def install_trials() -> None:
    """Knobs under trial, set on the GAN object: `lr_floor` under the decayed rates, `ema_warmup` w (EMA decay
    min(ema, (1+t)/(w+t)) at its t-th update)."""
    def follow_schedule(self, progress, lr_progress=None, step=0):
        self.instance_sigma = self.cfg.instance_noise * max(0.0, 1.0 - progress)
        lr_progress = progress if lr_progress is None else lr_progress
        after = self.cfg.lr_decay_after
        begin = (after * lr_progress / step if step else 1.0) if after else 0.0
        factor = trial_lr_factor(lr_progress, self.cfg.lr_decay, getattr(self, "lr_floor", 0.0), begin)
        for opt, base in ((self.opt_g, self.base_lr["g"]), (self.opt_d, self.base_lr["d"])):
            for group in opt.param_groups:
                group["lr"] = base * factor

    @torch.no_grad()
    def update_ema(self):
        self.ema_t = getattr(self, "ema_t", 0) + 1
        warm = getattr(self, "ema_warmup", 0)
        beta = min(self.cfg.ema, (1 + self.ema_t) / (warm + self.ema_t)) if warm else self.cfg.ema
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - beta)
        for eb, b in zip(self.G_ema.buffers(), self.G.buffers()):
            eb.copy_(b)
    GAN.follow_schedule, GAN.update_ema = follow_schedule, update_ema


def decay_begins(cfg, floor: float) -> int:
    """The first iteration whose learning rate is below the base rate in a run of `cfg.steps` iterations."""
    steps = cfg.steps
    for step in range(steps):
        if trial_lr_factor(step / steps, cfg.lr_decay, floor, cfg.lr_decay_after / steps) < 1.0:
            return step
    return steps


def fork(trunk: Trainer, cfg, floor: float) -> Trainer:
    """A Trainer for `cfg` in the trunk's exact state."""
    branch = Trainer(cfg)
    branch.gan, branch.batches = copy.deepcopy((trunk.gan, trunk.batches))
    branch.gan.cfg, branch.gan.lr_floor = cfg, floor
    branch.step = trunk.step
    return branch


def score(trainer: Trainer, cfg, ev, stats) -> dict:
    z, labels = metrics.eval_noise(cfg, 1000)
    r = metrics.evaluate_generator(trainer.gan.sampler, ev, stats, z, labels)
    return {"fd": round(r.fid, 2), "modes": r.modes_covered}


def run_group(preset: str, variants: list[dict], seed: int, budgets: list[int], data_root: str, ev, stats, emit):
    """Variants that differ only in their decay share one constant-rate trunk, forked where each decay begins."""
    common = {k: v for k, v in variants[0].items() if k not in DECAY_KEYS}
    warm = common.pop("ema_warmup", 0)
    base = dict(common, seed=seed, max_seconds=0.0, eval_every=0, device="cpu", data_root=data_root)
    trunk = Trainer(build_config(preset, steps=max(budgets), **dict(base, lr_decay=0.0, lr_decay_after=0)).validate())
    trunk.gan.ema_warmup = warm
    forks = []
    for i, v in enumerate(variants):
        own = {k: v[k] for k in ("lr_decay", "lr_decay_after") if k in v}
        for n in budgets:
            cfg = build_config(preset, steps=n, **dict(base, **own)).validate()
            forks.append((decay_begins(cfg, v.get("lr_floor", 0.0)), n, i, cfg))
    for begin, n, i, cfg in sorted(forks, key=lambda f: f[:3]):
        while trunk.step < begin:
            trunk.train_iteration()
        branch = fork(trunk, cfg, variants[i].get("lr_floor", 0.0)) if begin < n else trunk
        while branch.step < n:
            branch.train_iteration()
        emit(variants[i], n, score(branch, cfg, ev, stats))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="fast-mnist")
    p.add_argument("--steps", default="500,800,1600", help="step budgets, comma-separated")
    p.add_argument("--seeds", default="0")
    p.add_argument("--variant", action="append", default=[], help="JSON of setting changes; repeatable")
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    args = p.parse_args()
    torch.set_num_threads(1)
    variants = [json.loads(v) for v in args.variant] or [{}]
    if any(k in v for v in variants for k in TRIAL_KNOBS):
        install_trials()
    budgets = sorted(int(x) for x in args.steps.split(",") if x.strip())
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    ev = metrics.get_evaluator("mnist", args.data_root)
    stats = metrics.real_stats(ev, 28, 1, args.data_root)
    groups: dict = {}
    for v in variants:
        key = json.dumps({k: x for k, x in v.items() if k not in DECAY_KEYS}, sort_keys=True)
        groups.setdefault(key, []).append(v)
    table: dict = {}
    for seed in seeds:
        def emit(changes, n, r, seed=seed):
            table.setdefault((json.dumps(changes), n), []).append(r["fd"])
            print(json.dumps(dict(changes=changes, seed=seed, steps=n, **r, load=load())), flush=True)
        for group in groups.values():
            run_group(args.preset, group, seed, budgets, args.data_root, ev, stats, emit)
    for (changes, n), fds in sorted(table.items()):
        print(json.dumps(dict(summary=json.loads(changes), steps=n, seeds=len(fds), fd_median=round(statistics.median(fds), 2),
                              fd_min=min(fds), fd_max=max(fds), load=load())), flush=True)


if __name__ == "__main__":
    main()
