"""How well GANs restore digits they never trained on, against the naive repairs.

    python benchmarks/restore.py [--prior RUN_DIR] [--inpaint RUN_DIR] [--superres RUN_DIR] [--n 300]
                                 [--data-root ../shared/data] [--threads 1]

Digits: MNIST's 60k training split (runs on `mnist-embedded` train on the 10k test set, so none of these was seen),
the first --n after a fixed shuffle. Damage: the centre 14×14 hole; ×4 super-resolution (28×28 → 7×7 by average
pooling). For each method it prints the share of restorations the quality evaluator reads as the right digit, PSNR
(on the hole for inpainting, the whole image for super-resolution), SSIM and seconds, then one JSON line.

  mean fill / bicubic   the naive repairs
  prior                 GAN-prior search with a generator run (--prior; without it the fast default is trained
                        for --train-seconds first)
  trained               a restorer run (--inpaint / --superres: the `inpaint-mnist` / `superres-mnist` presets)

Goals (issue 15): prior ≥ 20 points of accuracy above the naive repair, 300 images in under a minute; trained
inpainting ≥ 90% and hole PSNR ≥ 4 dB above mean fill, trained super-resolution ≥ 95% and ≥ 3 dB above bicubic.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def train_default_generator(seconds: float, out: str) -> str:
    from gan_core import RunStore, build_config
    store = RunStore(out)
    run_id = store.start(build_config("fast-mnist", max_seconds=seconds, eval_every=0))
    store.wait(run_id)
    return str(store.run_dir(run_id))


def measure(name: str, restore, truth, labels, mask, root: str) -> dict:
    from gan_core.restore import restorer as rs
    start = time.perf_counter()
    restored = restore()
    seconds = time.perf_counter() - start
    result = rs.scores(restored, truth, labels, mask, root=root)
    return {"method": name, "accuracy": result["accuracy"],
            "psnr": result["psnr_hole"] if mask is not None else result["psnr"], "ssim": result["ssim"],
            "seconds": round(seconds, 1)}


def benchmark(args) -> dict:
    import torch

    from gan_core.insight.evaluate import evaluation_images
    from gan_core.restore import restorer as rs
    from gan_core.restore.damage import apply_mask, downsample, make_mask
    from gan_core.runs.handle import load_restorer
    torch.set_num_threads(args.threads)
    prior_run = args.prior or train_default_generator(args.train_seconds, tempfile.mkdtemp(prefix="restore-bench-"))
    prior = load_restorer(prior_run)
    truth, labels, unseen = evaluation_images(prior.cfg, 28, 1, args.n, args.data_root)
    if not unseen:
        print(f"note: MNIST's training split is not readable under {args.data_root}: measuring on the run's own digits")
    hole = make_mask("centre", args.n, 28)
    damaged = apply_mask(truth, hole)
    low = downsample(truth, 4)
    mean = rs.mean_image(prior)
    settings = rs.SearchSettings(frames=0)
    tasks = {
        "inpaint": (hole, [("mean fill", lambda: rs.baseline("inpaint", damaged, hole, mean=mean)),
                           ("prior", lambda: rs.restore(prior, "inpaint", damaged, hole, settings=settings).images)],
                    args.inpaint, damaged),
        "superres": (None, [("bicubic", lambda: rs.baseline("superres", low, factor=4)),
                            ("prior", lambda: rs.restore(prior, "superres", low, factor=4, settings=settings).images)],
                     args.superres, low),
    }
    report = {"n": args.n, "unseen": unseen, "threads": args.threads, "prior_run": prior_run, "load": os.getloadavg()[0]}
    for task, (mask, methods, trained_run, given) in tasks.items():
        if trained_run:
            trained = load_restorer(trained_run)
            methods.append(("trained", lambda t=trained, k=task, g=given, m=mask: rs.restore(t, k, g, m, 4).images))
        rows = [measure(name, fn, truth, labels, None if mask is None else mask, args.data_root) for name, fn in methods]
        print(f"\n{task} ({'centre 14×14 hole, PSNR on the hole' if mask is not None else '×4, 7×7 → 28×28'}; "
              f"{args.n} unseen digits)")
        print(f"  {'method':10} {'right digit':>11} {'PSNR dB':>8} {'SSIM':>6} {'seconds':>8}")
        for r in rows:
            gain = f"  (+{100 * (r['accuracy'] - rows[0]['accuracy']):.0f} points, {r['psnr'] - rows[0]['psnr']:+.2f} dB)" \
                if r is not rows[0] else ""
            print(f"  {r['method']:10} {100 * r['accuracy']:10.1f}% {r['psnr']:8.2f} {r['ssim']:6.3f} {r['seconds']:8.1f}{gain}")
        report[task] = rows
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", help="a generator run of MNIST digits (default: train the fast default now)")
    p.add_argument("--inpaint", help="a restorer run of the inpaint-mnist preset")
    p.add_argument("--superres", help="a restorer run of the superres-mnist preset")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--train-seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 is fastest on a busy 2-core machine)")
    print(json.dumps(benchmark(p.parse_args())))


if __name__ == "__main__":
    main()
