"""How fast the 2-D playground trains on the CPU, and how long one redraw's data takes.

    python benchmarks/playground_speed.py                 # it/s of the default preset + figure/metrics timings
    python benchmarks/playground_speed.py --threads 1     # the same with one torch thread
    python benchmarks/playground_speed.py --presets       # also: modes covered / % HQ / KL of every preset

The page runs `iterations per refresh` iterations and then redraws about once a second, so what matters is
it/s with one redraw (figure data + metrics) per second taken out."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gan_core.engine.threads import torch_threads
from gan_core.playground.plane import d_surface, generator_manifold, gradient_field
from gan_core.playground.session import SCENARIOS, Playground, preset_settings


def timed(fn, repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(name: str, iterations: int) -> None:
    pg = Playground(preset_settings(name))
    pg.run(50)  # warm-up: allocator, Adam state
    start = time.perf_counter()
    pg.run(iterations)
    rate = iterations / (time.perf_counter() - start)
    s = pg.settings
    print(f"training [{name}]: {rate:,.0f} iterations/s "
          f"({iterations} iterations; G {s.g_layers}x{s.g_width}, D {s.d_layers}x{s.d_width}, batch {s.batch_size}, "
          f"{s.n_critic} D step(s) per G step)")
    z = pg.eval_z[:64]
    parts = {
        "D heatmap 60x60": lambda: d_surface(pg.D, pg.loss, pg.extent, 60),
        "G manifold 2x11 lines x 60 points": lambda: generator_manifold(pg.G, s.z_dim, s.noise),
        "G gradient arrows (64 points)": lambda: gradient_field(pg.G, pg.D, pg.loss, z),
        "all figure layers (+ 500 real/fake)": pg.figure_layers,
        "metrics (KL/JS + modes, 2,500 samples)": pg.metrics,
    }
    with torch_threads(pg.threads):  # as the engine runs them
        for label, fn in parts.items():
            print(f"  {label:<40} {1000 * timed(fn, 20):7.1f} ms")
    redraw = timed(pg.figure_layers, 10) + timed(pg.metrics, 10)
    print(f"  one redraw per second leaves {rate * (1 - redraw):,.0f} iterations/s for training")


def preset_report() -> None:
    print("\npreset outcomes on ring-8 (2,500 fixed-noise samples; modes = VEEGAN rule >= 1 HQ sample, "
          "modes_20 = PacGAN >= 20;\n   push = G's push, mean |grad_x loss_G| at its points):")
    for name, preset in SCENARIOS.items():
        pg = Playground(preset_settings(name))
        start = time.perf_counter()
        checkpoints = []
        n = preset["iterations"]
        for stop in (n // 3, 2 * n // 3, n):
            pg.run(stop - pg.iteration)
            m = pg.metrics()
            checkpoints.append(f"{pg.iteration}: {m['modes']}/8 ({m['modes_20']}/8), {m['hq_percent']:.0f}% HQ, "
                               f"KL {m['kl']:.2f}, push {m['g_push']:.2g}")
        seconds = time.perf_counter() - start
        print(f"  {name:<34} " + " | ".join(checkpoints) + f"   [{seconds:.0f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--presets", action="store_true", help="also train every preset and report its metrics")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    speed("Default", args.iterations)
    if args.presets:
        preset_report()


if __name__ == "__main__":
    main()
