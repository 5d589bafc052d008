"""What live quality metrics cost: images/s of the fast default run with and without evaluation, and the
evaluator's one-off training time and held-out accuracy.

    python benchmarks/eval_overhead.py [--seconds 30] [--repeats 2] [--eval-every 200] [--device cpu]

Runs alternate (off, on, off, on, ...) so a busy machine slows both alike; the medians are compared. The
evaluator is trained into a fresh temp cache first, so its training time is measured too (--cache reuses one).
Goal: with evaluation, at least 90% of the throughput without it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_once(store, seconds: float, device: str, eval_every: int, eval_samples: int) -> dict:
    from gan_core import build_config
    cfg = build_config("fast-mnist", max_seconds=seconds, device=device, eval_every=eval_every,
                       eval_samples=eval_samples, checkpoint_every=10_000_000)
    run_id = store.start(cfg)
    status = store.wait(run_id)
    snap = store.snapshot(run_id)
    images = snap.step * cfg.batch_size * cfg.n_critic
    result = {"eval_every": eval_every, "status": status, "steps": snap.step, "seconds": round(snap.elapsed, 2),
              "images_per_s": round(images / snap.elapsed, 1)}
    evaluation = snap.extra.get("eval")
    if evaluation:
        periodic = [h for h in evaluation["history"] if h["step"] < snap.step]
        result.update(evaluations=len(periodic), skipped=evaluation["skipped"], final_eval_seconds=evaluation["seconds"],
                      fid=round(evaluation["fid"], 2), modes=evaluation["modes_text"])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="training seconds per run")
    p.add_argument("--repeats", type=int, default=2, help="runs per setting (alternating)")
    p.add_argument("--eval-every", type=int, default=200, help="evaluation period in steps (the default config uses 500)")
    p.add_argument("--eval-samples", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--nice", type=int, default=None, help="niceness of the evaluation worker (default: live_eval.WORKER_NICE)")
    p.add_argument("--cache", default=None, help="evaluator cache folder to reuse (default: a fresh temp folder)")
    args = p.parse_args()

    os.environ["GAN_STUDIO_CACHE"] = args.cache or tempfile.mkdtemp(prefix="gan-eval-cache-")
    import torch

    from gan_core import RunStore
    from gan_core.engine import live_eval, metrics
    if args.nice is not None:
        live_eval.WORKER_NICE = args.nice
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {args.device}, "
          f"eval worker nice {live_eval.WORKER_NICE}")

    start = time.perf_counter()
    ev = metrics.get_evaluator("mnist-embedded")  # train_seconds: the training loop; wall: child process and all
    print(json.dumps({"evaluator": ev.describe(), "get_evaluator_wall_s": round(time.perf_counter() - start, 2)}))
    start = time.perf_counter()
    metrics.real_stats(ev, 28, 1)
    print(json.dumps({"real_stats_s": round(time.perf_counter() - start, 2)}))

    store = RunStore(tempfile.mkdtemp(prefix="gan-eval-bench-"))
    rates: dict[int, list[float]] = {0: [], args.eval_every: []}
    for _ in range(args.repeats):
        for every in (0, args.eval_every):
            r = run_once(store, args.seconds, args.device, every, args.eval_samples)
            rates[every].append(r["images_per_s"])
            print(json.dumps(r), flush=True)
    off, on = statistics.median(rates[0]), statistics.median(rates[args.eval_every])
    print(json.dumps({"images_per_s_without_eval": off, "images_per_s_with_eval": on,
                      "ratio": round(on / off, 3), "goal": ">= 0.9"}))


if __name__ == "__main__":
    main()
