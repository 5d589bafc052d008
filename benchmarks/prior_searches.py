"""Several sessions press Restore's GAN-prior search at once: the server's memory and each search's time.

    python benchmarks/prior_searches.py [--sessions 5] [--images 8] [--slots 1,5]

Each --slots value is one round in this process: 1 is the server-wide queue (gan_core.restore.prior.SEARCHES), 5
lets all five run at once (the old behaviour). Prints the resident memory before, the peak above it, what stays
held after the round, and the seconds
each search took (queue wait included), with the load average beside them."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core import RunStore, build_config  # noqa: E402
from gan_core.restore import restorer as rs  # noqa: E402
from gan_core.restore import prior  # noqa: E402
from gan_core.restore.damage import apply_mask, make_mask  # noqa: E402
from gan_core.restore.demo import test_images  # noqa: E402
from gan_core.runs.handle import load_restorer  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--slots", default="1,5")
    args = ap.parse_args()
    store = RunStore(Path(tempfile.mkdtemp(prefix="prior-bench-")) / "runs")
    run_id = store.start(build_config("fast-mnist", steps=2, max_seconds=0, eval_every=0, device="cpu"))
    assert store.wait(run_id, 600) == "finished"
    restorer = load_restorer(store.run_dir(run_id))
    truth, _ = test_images(restorer, args.images, 0)
    x = rs.check_images(truth)
    mask = make_mask("centre", len(x), restorer.size)
    for slots in (int(s) for s in args.slots.split(",")):
        prior.SEARCHES.slots = slots
        base, peak, done = rss_mb(), [0.0], threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb())
                done.wait(0.02)  # a sampling interval, not synchronisation
        times = []

        def search():
            t0 = time.perf_counter()
            rs.restore(restorer, "inpaint", apply_mask(x, mask), mask, 4, rs.SearchSettings(frames=0))
            times.append(time.perf_counter() - t0)
        watcher = threading.Thread(target=watch)
        watcher.start()
        start = time.perf_counter()
        workers = [threading.Thread(target=search) for _ in range(args.sessions)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done.set()
        watcher.join()
        print(f"slots={slots} sessions={args.sessions} images={args.images} rss_before={base:.0f}MB "
              f"peak_above={peak[0] - base:.0f}MB held_after={rss_mb() - base:.0f}MB all_done={time.perf_counter() - start:.1f}s "
              f"per_search={sorted(round(t, 1) for t in times)} loadavg={os.getloadavg()}", flush=True)
    store.shutdown(timeout=60)


if __name__ == "__main__":
    main()
