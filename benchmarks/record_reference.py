"""Record the healthy reference trace of each image preset (gan_core/assets/reference/<preset>.csv).

    python benchmarks/record_reference.py [--presets fast-mnist:800,classic-mlp,...] [--steps 300] [--eval-every 100]
                                          [--log-every 10]

Each preset trains for NAME:STEPS iterations (else --steps; a reference should cover the whole length a lesson runs
the preset, or the health check has nothing to compare the later steps with) (step-bounded, so a loaded machine records the same curve, only
slower) on the CPU with its own seed, logging every --log-every steps and measuring quality every --eval-every steps;
gan_core.insight.reference.band turns the trace into the few-KB table the Monitor overlays. Prints one line per preset
(steps, seconds, rows, bytes). The failure demos have no file of their own: their healthy twin is classic-mlp.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core import RunStore, build_config  # noqa: E402
from gan_core.insight.reference import REFERENCE_DIR, SAME_RECIPE, band, reference_path  # noqa: E402
from gan_core.presets import PRESETS  # noqa: E402


def image_presets() -> list[str]:
    return [name for name in PRESETS if not build_config(name).is_2d and name not in SAME_RECIPE]


def record(preset: str, steps: int, eval_every: int, log_every: int, runs: Path) -> tuple[int, float, int, int]:
    cfg = build_config(preset, steps=steps, max_seconds=0, log_every=log_every, eval_every=eval_every, sample_every=10**6,
                       checkpoint_every=10**6, device="cpu").validate()
    store = RunStore(runs)
    start = time.perf_counter()
    run_id = store.start(cfg)
    status = store.wait(run_id)
    if status != "finished":
        raise SystemExit(f"{preset}: run {status}: {store.snapshot(run_id).message}")
    seconds = time.perf_counter() - start
    table = band(store.snapshot(run_id, max_points=10**6).metrics, max_rows=40)
    path = reference_path(preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4g")
    return steps, seconds, len(table), path.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(image_presets()))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=10)
    args = p.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="reference-runs-"))
    try:
        for item in args.presets.split(","):
            preset, _, own_steps = item.partition(":")
            steps, seconds, rows, size = record(preset, int(own_steps or args.steps), args.eval_every, args.log_every, runs)
            print(f"{preset:18} {steps} steps in {seconds:6.1f} s → {rows} rows, {size} bytes "
                  f"({REFERENCE_DIR.name}/{preset}.csv)", flush=True)
    finally:
        shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    main()
