"""Training speed when the cores are shared: beside a busy process, and two runs in one process (the dashboard's
store). Before = every run on all the process's cores, fixed (the old auto); after = `threads: 0` today (runs in a
process split the cores, each adapts between 1 thread and its share: gan_core/engine/threads.py). It also prints the fair
share: what one thread can make beside the busy process if the scheduler splits the cores evenly among the runnable
threads (the one-thread quiet speed × cores / (burners + 1)).

    python benchmarks/busy.py [--preset fast-mnist] [--seconds 15] [--repeats 2] [--burners 2]
    python benchmarks/busy.py --sections cli --seconds 25      # the headless CLI: `train --workers auto`

The `cli` section times `python -m gan_core train` as shipped (--workers auto: worker processes only on cores
nobody else is using) quiet and beside the busy process, against one thread quiet (the fair share's basis), and
two default runs at once against one alone: a run with worker processes must still take one core's fair share
beside other work.

Each figure is images/s over a whole short run (RunStore, live evaluation off, the preset's own logging). Settings
alternate within one process, `--repeats` times, medians printed with the load average, because other programs
share the machine. The busy process: `--burners` Python processes each spinning on one core (another user's work).
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

from gan_core import RunStore, build_config  # noqa: E402
from gan_core.engine.threads import usable_cores  # noqa: E402

BURN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass"  # ends with the benchmark


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def images_per_s(store: RunStore, run_id: str) -> float:
    snap = store.snapshot(run_id)
    cfg = snap.config
    return snap.step * cfg.batch_size * cfg.n_critic / snap.elapsed if snap.elapsed else float("nan")


def train_together(store: RunStore, configs: list) -> list[float]:
    """Start every config at once in the one store; images/s of each."""
    ids = [store.start(c) for c in configs]
    for run_id in ids:
        status = store.wait(run_id)
        if status != "finished":
            sys.exit(f"run {run_id} {status}: {store.snapshot(run_id).message}")
    return [images_per_s(store, i) for i in ids]


def cli_runs(flag_sets: list[list[str]], seconds: float) -> list[dict]:
    """`python -m gan_core train` once per flag set, all at once; each one's result line."""
    procs = [subprocess.Popen([sys.executable, "-m", "gan_core", "train", "--out", tempfile.mkdtemp(prefix="busy-cli-"),
                               "--quiet", "--eval-every", "0", "--steps", "0", "--max-seconds", str(seconds), *flags],
                              cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for flags in flag_sets]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"gan_core train exited {proc.returncode}: {err.strip()[-500:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


class Burners:
    """`n` processes each burning one core until the block ends."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(self.n)]
        time.sleep(0.5)  # let them reach the scheduler before timing starts
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def pct(a: float, b: float) -> str:
    return f"{a / b:.0%}" if b else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast-mnist")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each measured run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--burners", type=int, default=usable_cores(), help="busy processes, one core each")
    ap.add_argument("--sections", default="busy,together",
                    help="busy (beside a busy process), together (two runs), cli (the headless CLI, --workers auto)")
    args = ap.parse_args()
    sections = args.sections.split(",")
    cores = usable_cores()
    cfg = build_config(args.preset, steps=0, max_seconds=args.seconds, eval_every=0, checkpoint_every=1_000_000)
    before, after, single = cfg.replace(threads=cores), cfg.replace(threads=0), cfg.replace(threads=1)
    print(f"# {args.preset}, {cores} cores, {args.seconds:.0f}-s runs, {args.repeats} repeats; before = {cores} "
          f"threads fixed, after = threads 0 (split + adaptive)\n# start: {uptime()}", flush=True)
    found: dict[str, list[float]] = {}

    def measure(name: str, configs: list) -> None:
        rates = train_together(store, configs)
        found.setdefault(name, []).append(sum(rates))
        print(f"  {name:28} {sum(rates):8,.0f} images/s" + (f"  ({' + '.join(f'{r:,.0f}' for r in rates)})"
              if len(rates) > 1 else "") + f"   load {os.getloadavg()[0]:.1f}", flush=True)

    def measure_cli(name: str, flag_sets: list[list[str]]) -> None:
        results = cli_runs(flag_sets, args.seconds)
        rates = [r["images_per_s"] for r in results]
        found.setdefault(name, []).append(sum(rates))
        workers = [r.get("workers", 1) for r in results]
        print(f"  {name:36} {sum(rates):8,.0f} images/s" + (f"  ({' + '.join(f'{r:,.0f}' for r in rates)})"
              if len(rates) > 1 else "") + f"  workers {workers}   load {os.getloadavg()[0]:.1f}", flush=True)

    if "cli" in sections:
        auto, one = ["--preset", args.preset], ["--preset", args.preset, "--workers", "1", "--threads", "1"]
        for r in range(args.repeats):
            print(f"# cli repeat {r + 1}", flush=True)
            measure_cli("cli quiet, 1 thread", [one])
            measure_cli("cli quiet, auto", [auto])
            measure_cli("cli two runs at once, auto", [auto, auto + ["--seed", "1"]])
            with Burners(args.burners):
                measure_cli(f"cli busy ({args.burners} burners), auto", [auto])

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs")
        for r in range(args.repeats if {"busy", "together"} & set(sections) else 0):
            print(f"# repeat {r + 1}", flush=True)
            order = [("before", before), ("after", after)] if r % 2 == 0 else [("after", after), ("before", before)]
            if "busy" in sections:
                for label, c in order + [("1 thread", single)]:
                    measure(f"quiet, {label}", [c])
                with Burners(args.burners):
                    for label, c in order:
                        measure(f"busy ({args.burners} burners), {label}", [c])
            if "together" in sections:
                for label, c in order:
                    measure(f"one run alone, {label}", [c])
                    measure(f"two runs at once, {label}", [c, c.replace(seed=1)])
        store.shutdown()

    med = {k: statistics.median(v) for k, v in found.items()}
    print(f"# end: {uptime()}")
    for label in ("before", "after"):
        if "busy" in sections:
            quiet, busy = med[f"quiet, {label}"], med[f"busy ({args.burners} burners), {label}"]
            print(f"SUMMARY busy {label:6}: quiet {quiet:,.0f}, beside the busy process {busy:,.0f} images/s = "
                  f"{pct(busy, quiet)} of its quiet speed ({pct(busy, med['quiet, before'])} of the old quiet speed)")
        if "together" in sections:
            alone, two = med[f"one run alone, {label}"], med[f"two runs at once, {label}"]
            print(f"SUMMARY together {label:6}: one run alone {alone:,.0f}, two at once {two:,.0f} images/s in all = "
                  f"{pct(two, alone)} of one alone (goal >= 80%)")
    if "cli" in sections:
        one, auto = med["cli quiet, 1 thread"], med["cli quiet, auto"]
        busy, two = med[f"cli busy ({args.burners} burners), auto"], med["cli two runs at once, auto"]
        share = min(1.0, cores / (args.burners + 1))
        print(f"SUMMARY cli quiet: auto {auto:,.0f} images/s = {auto / one:.2f}x one thread ({one:,.0f}); goal >= 1.7x "
              f"on an idle 2-core machine")
        print(f"SUMMARY cli busy: auto beside the busy process {busy:,.0f} images/s = {pct(busy, one * share)} of the "
              f"fair share one thread can get ({one * share:,.0f}); goal: no more than it, as before")
        print(f"SUMMARY cli together: two auto runs at once {two:,.0f} images/s in all = {pct(two, auto)} of one alone")
    if "busy" in sections:
        # The scheduler gives each runnable thread an equal slice: beside b spinning threads one thread of ours gets
        # cores / (b + 1) of a core. More than that means taking CPU from the other user's work.
        share = min(1.0, cores / (args.burners + 1))
        bound = med["quiet, 1 thread"] * share
        print(f"SUMMARY busy fair share: one thread quiet {med['quiet, 1 thread']:,.0f} images/s × {share:.2f} of a core "
              f"= {bound:,.0f} images/s = {pct(bound, med['quiet, after'])} of the quiet speed")
        print("SUMMARY busy goal: after keeps >= 50% of its quiet speed")


if __name__ == "__main__":
    main()
