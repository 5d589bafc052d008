"""How much of the digit the damage leaves: a classifier trained on the damaged digits themselves.

    python benchmarks/restore_ceiling.py [--data-root ../shared/data] [--steps 4000] [--n 1000] [--arch large]

A restorer followed by the quality evaluator is one way to read a digit from a damaged image; a classifier trained
directly on damaged digits (with their labels) is the direct way. Its accuracy estimates the ceiling for
benchmarks/restore.py's "right digit" column (centre 14×14 hole; ×4 average-pooled, bicubic back to 28×28) — an
estimate from below: a better classifier may read more. --arch small is the evaluator's own net (with its ±2 px
shifts), --arch large a common MNIST CNN (4 convs of 16-32 channels, BatchNorm, dropout), no shifts (the test digits are
centred under the hole). Two settings:

  10k → 60k   trained on the embedded 10k test set (what the restorer presets train on), read on the same 60k
              digits benchmarks/restore.py measures (the first --n after its fixed shuffle) and on all 60k
  60k → 10k   trained on MNIST's 60k training split, read on the 10k test set (six times the data)

It also prints what the evaluator itself reads on the clean digits and on the naive repairs."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.data import load_images, to_unit_range  # noqa: E402
from gan_core.engine.metrics import TRAIN_BATCH, build_classifier, get_evaluator  # noqa: E402
from gan_core.restore import restorer as rs  # noqa: E402
from gan_core.restore.damage import apply_mask, downsample, make_mask


def large_classifier() -> torch.nn.Sequential:
    conv = lambda cin, cout: (torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU())
    return torch.nn.Sequential(*conv(1, 16), *conv(16, 16), torch.nn.MaxPool2d(2), *conv(16, 32), *conv(32, 32),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.3),
                               torch.nn.Linear(32 * 7 * 7, 128), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                               torch.nn.Linear(128, 10))

DAMAGE = {
    "inpaint": lambda x: apply_mask(x, make_mask("centre", len(x), 28)),
    "superres": lambda x: rs.upsample_bicubic(downsample(x, 4), 4),
}


def fit(images: torch.Tensor, labels: torch.Tensor, damage, steps: int, arch: str, seed: int = 0) -> torch.nn.Module:
    """The evaluator's recipe (Adam, one-cycle; for the small net a ±2 px shift per batch), on damaged digits."""
    torch.manual_seed(seed)
    net = build_classifier(1, 28, 10) if arch == "small" else large_classifier()
    shift = 2 if arch == "small" else 0
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (TRAIN_BATCH,), generator=g)
        dy, dx = torch.randint(-shift, shift + 1, (2,), generator=g).tolist()
        x = damage(torch.roll(to_unit_range(images[idx]), (dy, dx), (2, 3)))
        loss = F.cross_entropy(net(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def read(net, images: torch.Tensor, labels: torch.Tensor, damage) -> float:
    hits = sum(int((net(damage(to_unit_range(x))).argmax(1) == y).sum())
               for x, y in zip(images.split(2000), labels.split(2000)))
    return hits / len(labels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--steps", type=int, default=4000, help="Adam steps of 64 digits per classifier")
    p.add_argument("--n", type=int, default=1000, help="the benchmark's unseen digits to read as well")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arch", choices=("small", "large"), default="large", help="the classifier (see above)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ten = load_images("mnist-embedded", args.data_root, 28, 1, "cpu")
    sixty = load_images("mnist", args.data_root, 28, 1, "cpu")
    pick = torch.randperm(len(sixty.images), generator=torch.Generator().manual_seed(15))[:args.n]  # = restore.py's
    evaluator = get_evaluator("mnist-embedded", args.data_root).net
    report = {"arch": args.arch, "steps": args.steps, "n": args.n, "load": os.getloadavg()[0]}
    clean = read(evaluator, sixty.images[pick], sixty.labels[pick], lambda x: x)
    print(f"the evaluator on the {args.n} clean unseen digits: {100 * clean:.1f}%")
    report["evaluator_clean"] = clean
    for task, damage in DAMAGE.items():
        naive = rs.baseline(task, damage(to_unit_range(sixty.images[pick])), make_mask("centre", args.n, 28),
                            mean=to_unit_range(ten.images).mean(0)) if task == "inpaint" else None
        start = time.perf_counter()
        small = fit(ten.images, ten.labels, damage, args.steps, args.arch)
        large = fit(sixty.images, sixty.labels, damage, args.steps, args.arch)
        row = {"10k->60k first n": read(small, sixty.images[pick], sixty.labels[pick], damage),
               "10k->60k all": read(small, sixty.images, sixty.labels, damage),
               "60k->10k": read(large, ten.images, ten.labels, damage),
               "evaluator on the damaged input": read(evaluator, sixty.images[pick], sixty.labels[pick], damage),
               "seconds": round(time.perf_counter() - start, 1)}
        if naive is not None:
            row["evaluator on mean fill"] = float((evaluator(naive).argmax(1) == sixty.labels[pick]).float().mean())
        report[task] = row
        print(f"\n{task}: a classifier trained on the damaged digits reads")
        for k, v in row.items():
            print(f"  {k:32} {v if k == 'seconds' else f'{100 * v:.1f}%'}")
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
