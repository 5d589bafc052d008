"""The 2-D default's quality on grid-25 and ring-8 at a step budget (VEEGAN's protocol), and what a step costs.

    python benchmarks/grid25.py --cost                       # CPU ms per step, one thread -> steps a quiet 30 s buys
    python benchmarks/grid25.py --steps 3000 --seeds 0,1,2   # HQ % and modes, grid-25 and ring-8, 3 seeds
    python benchmarks/grid25.py --steps 3000 --versus '{"z_dim": 2}'   # the preset against changed settings
    python benchmarks/grid25.py --cli --seeds 0,1,2          # as a user trains it: `python -m gan_core train`, wall clock

Goal (issue 27): on grid-25 >= 90 % of 2,500 samples high quality (within 3σ of a mode) with all 25 modes covered
in what 30 s of a quiet machine buys, and ring-8 keeps all 8 modes. On a shared machine a time budget buys fewer
steps as the load rises, so this runs step budgets: the thread CPU time of a step is about the same under load,
and `--cost` turns it into the steps 30 quiet seconds buy. The loop is the trainer's own iteration (schedule, EMA
and all) on one thread; samples come from the run's sampler (EMA weights when on), fresh noise of their own seed.
`--cli` checks the goal itself on a quiet machine: the preset trained by `python -m gan_core train` (its whole loop:
metrics, scatter plots, checkpoints; start-up excluded, as the run's own clock counts), its wall seconds, and the
final checkpoint's sampler scored the same way.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gan_core.data import load_points  # noqa: E402
from gan_core.engine.checkpoint import load_generator  # noqa: E402
from gan_core.engine.gan import sample_noise  # noqa: E402
from gan_core.engine.point_metrics import mode_metrics  # noqa: E402
from gan_core.runs.files import list_checkpoints  # noqa: E402
from gan_core.engine.trainer import Trainer  # noqa: E402
from gan_core.presets import build_config  # noqa: E402

EVAL_SAMPLES = 2500  # VEEGAN / Unrolled-GAN score 2,500 samples
EVAL_SEED = 12345


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def train(preset: str, steps: int, seed: int, dataset: str, changes: dict) -> tuple[Trainer, float, float]:
    """`steps` trainer iterations of the preset on one thread; returns the trainer, thread CPU s and wall s."""
    cfg = build_config(preset, dataset=dataset, steps=steps, max_seconds=0, seed=seed, threads=1, **changes).validate()
    torch.set_num_threads(1)
    trainer = Trainer(cfg)
    cpu, wall = time.thread_time(), time.perf_counter()
    while not trainer.done():
        trainer.train_iteration()
    return trainer, time.thread_time() - cpu, time.perf_counter() - wall


def score(trainer: Trainer) -> dict:
    gan, points = trainer.gan, trainer.points
    z = gan.noise(EVAL_SAMPLES, torch.Generator().manual_seed(EVAL_SEED), "cpu")
    with torch.no_grad():
        x = gan.generate(z).cpu().numpy()
    return mode_metrics(x, points.centres.cpu().numpy(), points.sigma)


def cli_quality(preset: str, seeds: list[int], datasets: list[str]) -> None:
    """The preset as `python -m gan_core train` runs it, per dataset and seed: the run's own seconds and steps, and
    its final checkpoint's samples scored as `score` scores a trainer's."""
    out = tempfile.mkdtemp(prefix="gan-grid25-")
    for dataset in datasets:
        rows = []
        for seed in seeds:
            proc = subprocess.run([sys.executable, "-m", "gan_core", "train", "--preset", preset, "--dataset", dataset,
                                   "--seed", str(seed), "--out", out, "--quiet"], capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parents[1], check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            run_dir = Path(result["run_dir"])
            G, cfg, meta = load_generator(list_checkpoints(run_dir)[-1])
            z = sample_noise(EVAL_SAMPLES, cfg.z_dim, cfg.noise, torch.Generator().manual_seed(EVAL_SEED))
            with torch.no_grad():
                x = G(z).numpy()
            points = load_points(dataset)
            m = mode_metrics(x, points.centres.cpu().numpy(), points.sigma)
            rows.append(m)
            print(json.dumps(dict(section="cli", dataset=dataset, seed=seed, steps=result["steps"],
                                  checkpoint_step=int(meta.get("step", 0)), seconds=result["seconds"],
                                  hq_percent=round(m["hq_percent"], 1), modes=m["modes"], modes_20=m["modes_20"],
                                  n_modes=m["n_modes"], load=load())), flush=True)
        print(json.dumps(dict(section="cli summary", dataset=dataset, preset=preset,
                              hq_percent=spread([r["hq_percent"] for r in rows]), modes=[r["modes"] for r in rows],
                              load=load())), flush=True)


def cost(preset: str, steps: int, changes: dict) -> None:
    """Thread CPU ms per step (after 100 warm-up steps), on grid-25; the steps a quiet 30 s buys."""
    _, cpu, wall = train(preset, steps, 0, "grid-25", changes)
    per_step = cpu / steps
    print(json.dumps(dict(section="cost", preset=preset, changes=changes, steps=steps,
                          cpu_ms_per_step=round(1e3 * per_step, 3), wall_ms_per_step=round(1e3 * wall / steps, 3),
                          steps_in_quiet_30s=int(30 / per_step), load=load())), flush=True)


def spread(xs) -> str:
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})"


def quality(preset: str, steps: int, seeds: list[int], datasets: list[str], variants: dict[str, dict]) -> None:
    """Every variant on every dataset and seed, interleaved so all see the same machine; then medians."""
    found: dict = {}
    for dataset in datasets:
        for seed in seeds:
            for name, changes in variants.items():
                trainer, cpu, wall = train(preset, steps, seed, dataset, changes)
                m = score(trainer)
                found[dataset, name, seed] = m
                print(json.dumps(dict(section="quality", dataset=dataset, variant=name, seed=seed, steps=steps,
                                      hq_percent=round(m["hq_percent"], 1), modes=m["modes"], modes_20=m["modes_20"],
                                      n_modes=m["n_modes"], cpu_s=round(cpu, 1), wall_s=round(wall, 1),
                                      load=load())), flush=True)
    for dataset in datasets:
        for name, changes in variants.items():
            rows = [found[dataset, name, s] for s in seeds]
            print(json.dumps(dict(section="summary", dataset=dataset, variant=name, changes=changes, steps=steps,
                                  hq_percent=spread([r["hq_percent"] for r in rows]),
                                  modes=[r["modes"] for r in rows], modes_20=[r["modes_20"] for r in rows],
                                  load=load())), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="2d-default")
    parser.add_argument("--cost", action="store_true", help="measure CPU time per step instead of quality")
    parser.add_argument("--cli", action="store_true", help="train with `python -m gan_core train` on the wall clock")
    parser.add_argument("--steps", type=int, default=0, help="step budget (0: the preset's)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default="grid-25,ring-8")
    parser.add_argument("--changes", default="{}", help="JSON settings applied to the preset")
    parser.add_argument("--versus", action="append", default=[],
                        help="JSON settings of another variant run beside the preset's (repeatable)")
    args = parser.parse_args()
    changes = json.loads(args.changes)
    steps = args.steps or build_config(args.preset, **changes).steps
    print(f"torch {torch.__version__}, load {load()}", flush=True)
    if args.cli:
        cli_quality(args.preset, [int(s) for s in args.seeds.split(",")], args.datasets.split(","))
        return
    if args.cost:
        cost(args.preset, args.steps or 1000, changes)
        for i, v in enumerate(args.versus):
            cost(args.preset, args.steps or 1000, {**changes, **json.loads(v)})
        return
    variants = {"preset": changes, **{f"v{i}": {**changes, **json.loads(v)} for i, v in enumerate(args.versus)}}
    quality(args.preset, steps, [int(s) for s in args.seeds.split(",")], args.datasets.split(","), variants)


if __name__ == "__main__":
    main()
