"""Several browser sessions watch one live run: page latency, refresh cadence, errors, and the run's throughput.

    python benchmarks/sessions.py [--sessions 5] [--seconds 60] [--preset classic-mlp] [--threads 0] [--steps 1000000] [--max-seconds 0]
    python benchmarks/sessions.py --vs-headless --sessions 1 --preset fast-mnist --threads 1,0 --seconds 30

Needs Chromium (/usr/bin/chromium) and Playwright. Prints the throughput with nobody watching first (the same
server, the same preset), then with N Playwright contexts each on Monitor. With several --threads values, one run
per value, in turn; with --vs-headless, the same preset also trained headless before each (`python -m gan_core
train` in its own process, as the issue measured it), as the reference the dashboard should reach (goal >= 90%)."""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from browser import browser_missing, chromium, chromium_pids, cpu_seconds, streamlit_server  # noqa: E402
from gan_core import RunStore  # noqa: E402

STEP_JS = """() => { const el = [...document.querySelectorAll('[data-testid="stMetric"]')].find(m => m.innerText.includes('Step'));
                     return el ? parseInt(el.querySelector('[data-testid="stMetricValue"]').innerText) : -1; }"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def store_stop(store: RunStore, run_id: str) -> None:
    """Stop the run the server trains (control.json) and wait until it has ended, so the next one trains alone."""
    store.stop(run_id)
    deadline = time.monotonic() + 120
    while store.snapshot(run_id).status in ("starting", "running", "paused") and time.monotonic() < deadline:
        time.sleep(0.5)  # polling another process's run folder


def images_per_s(store: RunStore, run_id: str, since_step: int) -> float:
    df = store.snapshot(run_id).metrics
    rows = df[df["step"] > since_step]["images_per_s"].dropna()
    return float(rows.median()) if len(rows) else float("nan")


def headless_images_per_s(preset: str, seconds: float, runs: Path) -> float:
    """The preset trained headless as the issue's reference does, `python -m gan_core train` in a process of its own
    (no server, no browser driver beside it), threads 0, live evaluation as the preset: median images/s."""
    done = subprocess.run([sys.executable, "-m", "gan_core", "train", "--preset", preset, "--max-seconds", str(seconds),
                           "--out", str(runs), "--name", "headless"], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"headless run failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    store = RunStore(runs)
    return images_per_s(store, store.runs()[0]["run_id"], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--preset", default="classic-mlp")
    ap.add_argument("--threads", default="0", help="the form's CPU threads field (0 = auto); comma-separated: one run each")
    ap.add_argument("--vs-headless", action="store_true", help="also train the preset headless (the CLI) before each run")
    ap.add_argument("--steps", default="1000000", help="the form's steps field: long enough to outlast the measurement")
    ap.add_argument("--max-seconds", default="0", help="the form's max seconds field (0 = no time limit)")
    args = ap.parse_args()
    if why := browser_missing():
        sys.exit(f"cannot run: {why}")
    tmp = Path(tempfile.mkdtemp(prefix="gan-sessions-"))
    runs = tmp / "runs"
    with streamlit_server(runs, tmp / "streamlit.log") as (url, server_pid), chromium() as browser:
        print(f"# {args.preset}; start: {uptime()}", flush=True)
        summary = []
        for i, threads in enumerate(args.threads.split(",")):
            headless = float("nan")
            if args.vs_headless:
                headless = headless_images_per_s(args.preset, args.seconds, tmp / f"headless-{i}")
                print(f"headless (`python -m gan_core train`, threads 0): {headless:,.0f} images/s", flush=True)
            print(f"# dashboard, form threads {threads}", flush=True)
            watcher = RunStore(runs)  # reads the folder the server writes, like another tab would
            # The run is started from the UI so the server's own thread trains it.
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.locator('[data-testid="stSelectbox"]', has_text="Preset").locator("input").click()
            page.get_by_role("option", name=args.preset + " —", exact=False).first.click()
            page.get_by_text("Length, device and speed").click()
            for label, value in (("threads", threads), ("steps", args.steps), ("max seconds", args.max_seconds)):
                box = page.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Enter")
            page.get_by_role("button", name="Start training").click()
            page.get_by_role("heading", name="Monitor").wait_for()
            run_id = page.url.split("run=")[-1] if "run=" in page.url else watcher.runs()[0]["run_id"]
            page.close()

            deadline = time.monotonic() + 300  # the first run on a dataset trains its quality evaluator first
            while watcher.snapshot(run_id).step < 50 and time.monotonic() < deadline:
                watcher.wait(run_id, timeout=0.5)
            step0 = watcher.snapshot(run_id).step
            deadline = time.monotonic() + args.seconds / 2
            while time.monotonic() < deadline:
                watcher.wait(run_id, timeout=0.5)
            step1 = watcher.snapshot(run_id).step
            alone = images_per_s(watcher, run_id, step0)
            print(f"nobody watching: {alone:,.0f} images/s (steps {step0}→{step1})")

            contexts, pages, latencies = [], [], []
            for _ in range(args.sessions):
                ctx = browser.new_context(viewport={"width": 1300, "height": 900})
                p = ctx.new_page()
                p.set_default_timeout(120_000)
                t = time.perf_counter()
                p.goto(f"{url}/monitor?run={run_id}")
                p.locator('[data-testid="stPlotlyChart"]').first.wait_for()
                latencies.append(time.perf_counter() - t)
                contexts.append(ctx)
                pages.append(p)
            print(f"{args.sessions} sessions: page load to first chart median {statistics.median(latencies):.2f} s, "
                  f"max {max(latencies):.2f} s")
            start_step = watcher.snapshot(run_id).step
            cpu_server, cpu_browsers = cpu_seconds(server_pid), sum(cpu_seconds(p) for p in chromium_pids())
            seen = [[] for _ in pages]
            errors = 0
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                for i, p in enumerate(pages):
                    seen[i].append((time.monotonic(), p.evaluate(STEP_JS)))
                    errors += p.locator('[data-testid="stException"]').count()
                pages[0].wait_for_timeout(500)
            watched = images_per_s(watcher, run_id, start_step)
            cpu_server = cpu_seconds(server_pid) - cpu_server
            cpu_browsers = sum(cpu_seconds(p) for p in chromium_pids()) - cpu_browsers
            print(f"CPU used while watching: server (training + {args.sessions} sessions) {cpu_server / args.seconds:.2f} "
                  f"cores, Chromium (the {args.sessions} pages) {cpu_browsers / args.seconds:.2f} cores of {os.cpu_count()}")
            gaps = []
            for trace in seen:
                changes = [t for (t, s), (_, s_prev) in zip(trace[1:], trace) if s != s_prev]
                gaps += [b - a for a, b in zip(changes, changes[1:])]
            print(f"while {args.sessions} sessions watched {args.seconds:.0f} s: {watched:,.0f} images/s "
                  f"({watched / alone:.0%} of unwatched); tracebacks on pages: {errors}")
            if gaps:
                print(f"step counter refresh interval per page: median {statistics.median(gaps):.2f} s, "
                      f"p90 {sorted(gaps)[int(0.9 * len(gaps))]:.2f} s")
            for ctx in contexts:
                ctx.close()
            store_stop(watcher, run_id)
            watcher.shutdown()
            summary.append(f"SUMMARY dashboard threads={threads}: {args.sessions} watching {watched:,.0f} images/s = "
                           f"{watched / headless:.0%} of headless {headless:,.0f} (unwatched {alone:,.0f}); load "
                           f"{os.getloadavg()[0]:.1f}")
        print(f"# end: {uptime()}")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
