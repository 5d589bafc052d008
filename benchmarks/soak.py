"""Soak: one long run with a dashboard-like reader, printing resident memory (RSS) over time and its growth.

    python benchmarks/soak.py [--steps 10000] [--every 500] [--dataset mnist-embedded] [--eval-every 1000]
                              [--device cpu] [--keep]

The run logs every 2 steps, saves a grid every 50 and a checkpoint every 500, so after a few thousand steps
every in-memory cache of the store (metric rows, grids, events) is past its bound and must stay there; a reader
thread snapshots the run twice a second and reopens old grids, as the Monitor page does. RSS is sampled from the
trainer thread every --every steps (psutil if installed, else /proc/self/statm). Memory is bounded when RSS
levels off: the script prints the growth over the second half of the run per 1,000 steps next to the start-up
footprint. Default config (tiny conditional MLP on the embedded digits) does 10,000 steps in ~3 minutes on 2
busy CPU cores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def slope_per_1000(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per 1,000 steps."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(s for s, _ in points) / n
    my = sum(m for _, m in points) / n
    var = sum((s - mx) ** 2 for s, _ in points)
    return 1000 * sum((s - mx) * (m - my) for s, m in points) / var if var else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=500, help="sample RSS every N steps")
    ap.add_argument("--dataset", default="mnist-embedded", help="mnist-embedded (MLP) or a 2-D set like ring-8")
    ap.add_argument("--eval-every", type=int, default=1000, help="live quality evaluation (image sets); 0 = off")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", action="store_true", help="keep the run folder (default: a temp folder, deleted)")
    args = ap.parse_args()

    from gan_core import RunStore, build_config
    from gan_core.runs.record import MAX_GRIDS_IN_MEMORY, MAX_ROWS_IN_MEMORY
    overrides = dict(steps=args.steps, device=args.device, log_every=2, sample_every=50, checkpoint_every=500)
    if args.dataset in ("mnist-embedded", "mnist", "fashion-mnist"):
        overrides.update(arch="mlp", g_hidden=[128, 128], d_hidden=[128, 128], batch_size=32, eval_every=args.eval_every)
    cfg = build_config(dataset=args.dataset, **overrides).validate()
    root = Path(tempfile.mkdtemp(prefix="gan-soak-"))
    store = RunStore(root / "runs")
    samples: list[tuple[int, float, float, int, int]] = []  # step, seconds, RSS MB, rows, grids in memory
    t0 = time.perf_counter()
    start_rss = rss_mb()

    def sample_rss(trainer):
        if trainer.step % args.every == 0 or trainer.step == 1:
            rec = trainer.record
            samples.append((trainer.step, time.perf_counter() - t0, rss_mb(), len(rec.rows), len(rec._grids)))

    run_id = store.start(cfg, hooks=[sample_rss])
    done, reads = threading.Event(), [0]

    def reader():  # what an open Monitor page does: snapshot, list runs, scroll back to an old grid
        while not done.wait(0.5):
            snap = store.snapshot(run_id)
            store.runs()
            if snap.grid_steps:
                store.grid(run_id, snap.grid_steps[len(snap.grid_steps) // 3])
            reads[0] += 1

    reader_thread = threading.Thread(target=reader, name="soak-reader", daemon=True)
    reader_thread.start()
    status = store.wait(run_id)
    done.set()
    reader_thread.join()
    snap = store.snapshot(run_id)
    end_rss = rss_mb()

    print(f"config: {cfg.dataset} / {cfg.arch} {cfg.g_hidden if cfg.arch.startswith('mlp') else ''} batch {cfg.batch_size}, "
          f"eval_every {cfg.eval_every if not cfg.is_2d else 'off (2-D)'}; status {status} at step {snap.step} in {snap.elapsed:.0f} s "
          f"({snap.step / max(snap.elapsed, 1e-9):.0f} steps/s); {reads[0]} dashboard reads")
    print(f"process RSS before the run: {start_rss:.0f} MB")
    print(f"{'step':>7} {'time s':>7} {'RSS MB':>8} {'rows':>6} {'grids':>6}")
    for step, secs, mb, rows, grids in samples:
        print(f"{step:>7} {secs:>7.0f} {mb:>8.1f} {rows:>6} {grids:>6}")
    print(f"{'end':>7} {time.perf_counter() - t0:>7.0f} {end_rss:>8.1f}")
    half = [(s, m) for s, _, m, _, _ in samples if s >= args.steps // 2]
    warm = next((m for s, _, m, _, _ in samples if s >= args.steps // 10), samples[0][2] if samples else end_rss)
    print(f"growth: {warm:.1f} MB at 10% → {end_rss:.1f} MB at the end ({end_rss - warm:+.1f} MB); "
          f"second half {slope_per_1000(half):+.2f} MB per 1,000 steps")
    print(f"caches at the end: {len(store._records[run_id].rows)} metric rows (bound {MAX_ROWS_IN_MEMORY}), "
          f"{len(store._records[run_id]._grids)} grids (bound {MAX_GRIDS_IN_MEMORY}), "
          f"{len(store._records[run_id].events)} events; on disk {len(snap.grid_steps)} grids, "
          f"{len(snap.checkpoints)} checkpoints")
    if args.keep:
        print(f"run folder: {store.run_dir(run_id)}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
