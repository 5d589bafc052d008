"""A lecture hall watching one live run: N sessions on Monitor (or the presenter view), no browsers drawn here.

    python benchmarks/classroom_load.py [--sessions 1,8,30,100] [--seconds 30] [--present]
                                        [--trainer process|server|cli] [--workers 1|auto|N] [--client-nice 10]
                                        [--classroom]

Each session speaks Streamlit's own WebSocket protocol (`/_stcore/stream`, protobuf BackMsg/ForwardMsg) as a
browser tab does: it opens the page, fetches every new grid image, and reruns each live fragment at the interval
the server asks (`auto_rerun`, the fragment's run_every), with the page's hash, like the frontend's timer. The
teacher's run is the Train page's default preset started by pressing Start over the same protocol: as the dashboard
trains it (--trainer process: a `train --workers` process of the run's own, GAN_STUDIO_WORKERS=--workers, 1 being
classroom mode's default), or on a thread of the server (--trainer server, GAN_STUDIO_WORKERS=thread, the old way:
its Python shares one interpreter lock with every rerun), or by a `python -m gan_core train` the user started
(--trainer cli). The browsers are elsewhere in a lecture hall; this client runs beside the server, so it lowers its
own priority (--client-nice) to take mostly the CPU the server and the run leave. --classroom sets a teacher
password, so every session is a viewer (whose reruns yield to the run); the run is then started as the teacher's
Start starts it in classroom mode, a `train --workers 1` process the dashboard follows.

For each N: the run's steps/s with nobody watching (the mean of the phases just before and after) against the
same run with N sessions watching, the server's cores (its CPU time / wall), rerun latency (a rerun request to its
script_finished) median / p90, the refresh interval (time between a session's successive new Step values) median
/ p90 / worst, and the interval the server asked for. The load average is printed beside each line: this
machine is shared, compare only figures from one invocation."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from browser import cpu_seconds, streamlit_server  # noqa: E402
from gan_core import RunStore  # noqa: E402

LIVE = ("starting", "running", "paused")
STEP = re.compile(r"\d+")


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


class Session:
    """One browser tab, minus the drawing: the page's protocol, its fragment timers and its image fetches."""

    def __init__(self, url: str, page: str, query: str):
        self.http = urlparse(url)
        self.ws_url = f"ws://{self.http.netloc}/_stcore/stream"
        self.page, self.query = page, query
        self.page_hash = ""
        self.timers: dict[str, asyncio.Task] = {}
        self.intervals: dict[str, float] = {}
        self.sent: list[float] = []  # rerun requests not yet answered by a script_finished
        self.latencies: list[float] = []
        self.finished_at: list[float] = []  # every script_finished: the reruns the server made for this session
        self.steps: list[tuple[float, int]] = []  # (when, value) each time the Step metric changed
        self.buttons: dict[str, str] = {}  # label -> widget id
        self.images: set[str] = set()
        self.errors = 0
        self.first_error = ""
        self.finished = asyncio.Event()
        self.ws = None

    async def send_rerun(self, fragment_id: str = "", widgets: list | None = None) -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string, cs.page_name, cs.page_script_hash = self.query, self.page, self.page_hash
        if fragment_id:
            cs.fragment_id, cs.is_auto_rerun = fragment_id, True
        for wid in widgets or ():
            cs.widget_states.widgets.add(id=wid, trigger_value=True)
        self.sent.append(time.monotonic())
        await self.ws.send(msg.SerializeToString())

    async def _timer(self, fragment_id: str, interval: float) -> None:
        """The frontend's setInterval: fires whether or not the last rerun has come back (the server coalesces)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.send_rerun(fragment_id)
            except websockets.ConnectionClosed:
                return

    def _clear_timers(self, ids=None) -> None:
        for fid in list(self.timers) if ids is None else ids:
            task = self.timers.pop(fid, None)
            if task:
                task.cancel()

    async def _fetch(self, path: str) -> None:
        """GET an image as the browser's <img> does (HTTP/1.0, read to the end)."""
        try:
            reader, writer = await asyncio.open_connection(self.http.hostname, self.http.port)
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {self.http.netloc}\r\n\r\n".encode())
            await writer.drain()
            while await reader.read(65536):
                pass
            writer.close()
        except OSError:
            self.errors += 1

    def _element(self, el, now: float) -> None:
        kind = el.WhichOneof("type")
        if kind == "metric" and el.metric.label == "Step":
            found = STEP.search(el.metric.body)
            if found and (not self.steps or self.steps[-1][1] != int(found.group())):
                self.steps.append((now, int(found.group())))
        elif kind == "imgs":
            for img in el.imgs.imgs:
                if img.url and img.url not in self.images:
                    self.images.add(img.url)
                    asyncio.get_running_loop().create_task(self._fetch(img.url if img.url.startswith("/") else "/" + img.url))
        elif kind == "button":
            self.buttons[el.button.label] = el.button.id
        elif kind == "exception":
            self.errors += 1
            self.first_error = self.first_error or f"{el.exception.type}: {el.exception.message}"[:200]

    async def serve(self) -> None:
        """Open the page and answer the server until the connection closes."""
        async with websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None,
                                      ping_interval=None) as ws:
            self.ws = ws
            await self.send_rerun()
            try:
                async for data in ws:
                    now = time.monotonic()
                    msg = ForwardMsg()
                    msg.ParseFromString(data)
                    kind = msg.WhichOneof("type")
                    if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                        self._element(msg.delta.new_element, now)
                    elif kind == "new_session":
                        if not msg.metadata.run.fragment_ids:  # a full run: the frontend drops its timers, the
                            self._clear_timers()  # fragments ask again
                        self.page_hash = msg.new_session.page_script_hash or self.page_hash
                    elif kind == "navigation":
                        self.page_hash = msg.navigation.page_script_hash or self.page_hash
                    elif kind == "auto_rerun":
                        fid, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
                        if fid not in self.timers or self.intervals.get(fid) != interval:
                            self._clear_timers([fid])
                            self.intervals[fid] = interval
                            self.timers[fid] = asyncio.get_running_loop().create_task(self._timer(fid, interval))
                    elif kind == "stop_auto_rerun":
                        self._clear_timers(list(msg.stop_auto_rerun.fragment_ids))
                    elif kind == "script_finished":
                        self.finished_at.append(now)
                        if self.sent:
                            self.latencies.append(now - self.sent[0])
                            self.sent.clear()
                        self.finished.set()
            finally:
                self._clear_timers()

    def gaps(self, start: float, end: float) -> list[float]:
        """The gaps between new steps seen between start and end."""
        times = [t for t, _ in self.steps if start <= t <= end]
        return [b - a for a, b in zip(times, times[1:])]


async def open_sessions(url: str, n: int, page: str, query: str) -> tuple[list[Session], list[asyncio.Task], int]:
    """N sessions, opened one after another as a class arrives (each given up to 20 s to draw its page before the
    next opens, so a slow server is not flooded at once); (sessions, their tasks, how many took longer)."""
    sessions = [Session(url, page, query) for _ in range(n)]
    tasks, slow = [], 0
    for s in sessions:
        tasks.append(asyncio.get_running_loop().create_task(s.serve()))
        try:
            await asyncio.wait_for(s.finished.wait(), timeout=20)
        except asyncio.TimeoutError:
            slow += 1
    return sessions, tasks, slow


async def close(tasks: list[asyncio.Task]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def start_default_run(url: str, runs: Path, max_seconds: int) -> str:
    """Press Start on the Train page with the default preset, made long enough to outlast the measurement."""
    teacher = Session(url, "", f"max_seconds={max_seconds}")
    task = asyncio.get_running_loop().create_task(teacher.serve())
    await asyncio.wait_for(teacher.finished.wait(), timeout=120)
    if "Start training" not in teacher.buttons:
        raise SystemExit(f"no Start button on the Train page (found {sorted(teacher.buttons)})")
    teacher.finished.clear()
    await teacher.send_rerun(widgets=[teacher.buttons["Start training"]])
    store = RunStore(runs)
    deadline = time.monotonic() + 60
    while not store.runs() and time.monotonic() < deadline:
        await asyncio.sleep(0.5)  # polling the folder another process writes
    await close([task])
    if not store.runs():
        raise SystemExit("Start made no run")
    return store.runs()[0]["run_id"]


def step_of(store: RunStore, run_id: str) -> int:
    return store.snapshot(run_id).step


async def steps_per_s(store: RunStore, run_id: str, seconds: float, pid: int) -> tuple[float, float]:
    """(steps/s of the run, server cores) over `seconds` of wall time."""
    s0, t0, c0 = step_of(store, run_id), time.monotonic(), cpu_seconds(pid)
    await asyncio.sleep(seconds)
    s1, t1, c1 = step_of(store, run_id), time.monotonic(), cpu_seconds(pid)
    return (s1 - s0) / (t1 - t0), (c1 - c0) / (t1 - t0)


async def measure(args, url: str, server_pid: int, runs: Path, trainer_pid: int | None, run_id: str) -> list[str]:
    store = RunStore(runs)
    deadline = time.monotonic() + 300  # the first run on a dataset may train its quality evaluator first
    while step_of(store, run_id) < 30 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    query = f"run={run_id}" + ("&present=1" if args.present else "")
    rows = []
    alone_before, alone_cores = await steps_per_s(store, run_id, args.seconds / 2, server_pid)
    for n in [int(x) for x in args.sessions.split(",")]:
        t_open = time.monotonic()
        sessions, tasks, slow = await open_sessions(url, n, "monitor", query)
        opened = time.monotonic() - t_open
        await asyncio.sleep(min(10.0, args.seconds / 3))  # let the first full runs and timers settle
        for s in sessions:
            s.latencies.clear()
        client0 = resource.getrusage(resource.RUSAGE_SELF)
        trainer0 = cpu_seconds(trainer_pid) if trainer_pid else 0.0
        start = time.monotonic()
        watched, cores = await steps_per_s(store, run_id, args.seconds, server_pid)
        end = time.monotonic()
        client1 = resource.getrusage(resource.RUSAGE_SELF)
        trainer_cores = (cpu_seconds(trainer_pid) - trainer0) / (end - start) if trainer_pid else 0.0
        client_cores = (client1.ru_utime + client1.ru_stime - client0.ru_utime - client0.ru_stime) / (end - start)
        latencies = [x for s in sessions for x in s.latencies]
        gaps, worst = [], []
        for s in sessions:
            g = s.gaps(start, end)
            gaps += g
            edges = [start] + [t for t, _ in s.steps if start <= t <= end] + [end]  # waiting counts from the start
            worst.append(max(b - a for a, b in zip(edges, edges[1:])))
        asked = sorted({round(v, 2) for s in sessions for v in s.intervals.values()})
        errors = sum(s.errors for s in sessions)
        first_error = next((s.first_error for s in sessions if s.first_error), "")
        await close(tasks)
        await asyncio.sleep(3)  # the server notices the closed sockets
        reruns = sum(1 for s in sessions for t in s.finished_at if start <= t <= end)
        alone_after, cores_after = await steps_per_s(store, run_id, args.seconds / 2, server_pid)
        alone, alone_cores = (alone_before + alone_after) / 2, (alone_cores + cores_after) / 2
        per_rerun_ms = 1000 * max(0.0, cores - alone_cores) * (end - start) / max(reruns, 1)
        load = os.getloadavg()
        line = (f"N={n:3d}: run {watched:6.1f} steps/s = {watched / alone:4.0%} of unwatched {alone:.1f} "
                f"(before {alone_before:.1f}, after {alone_after:.1f}) | server {cores:.2f} cores (alone "
                f"{alone_cores:.2f}; {reruns / (end - start):.1f} reruns/s, ~{per_rerun_ms:.0f} ms CPU each)"
                + (f", trainer process {trainer_cores:.2f}" if trainer_pid else "")
                + f", this client {client_cores:.2f} | rerun median {statistics.median(latencies) if latencies else float('nan'):.2f}"
                  f" / p90 {pct(latencies, 0.9):.2f} s | new step every median "
                  f"{statistics.median(gaps) if gaps else float('nan'):.2f} / p90 {pct(gaps, 0.9):.2f} s, worst session's "
                  f"longest gap {max(worst):.1f} s | asked {asked} s | opened in {opened:.0f} s ({slow} took over 20 s) | "
                  f"errors {errors} "
                  f"| load {load[0]:.1f} {load[1]:.1f}" + (f" | first error: {first_error}" if first_error else ""))
        print(line, flush=True)
        rows.append(line)
        alone_before, alone_cores = alone_after, cores_after
    return rows


async def main_async(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gan-classroom-"))
    runs = tmp / "runs"
    runs.mkdir()
    trainer, trainer_pid = None, None
    env = {"GAN_STUDIO_WORKERS": "thread" if args.trainer == "server" else args.workers}
    if args.classroom:
        env["GAN_STUDIO_TEACHER_PASSWORD"] = "not-for-the-class"
        args.trainer, args.workers = "cli", "1"
    with streamlit_server(runs, tmp / "streamlit.log", env=env) as (url, server_pid):
        try:
            print(f"# {'presenter view' if args.present else 'Monitor'}{', classroom mode' if args.classroom else ''}, "
                  f"trainer {args.trainer}{' --workers ' + args.workers if args.trainer != 'server' else ''}, "
                  f"{args.seconds:.0f} s "
                  f"per phase, {os.cpu_count()} cores, client nice {args.client_nice}, load {os.getloadavg()}", flush=True)
            if args.trainer == "cli":
                trainer = subprocess.Popen([sys.executable, "-m", "gan_core", "train", "--preset", args.preset,
                                            "--max-seconds", str(args.max_seconds), "--out", str(runs), "--workers",
                                            args.workers], cwd=REPO,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 120
                while not RunStore(runs).runs() and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                run_id = RunStore(runs).runs()[0]["run_id"]
                trainer_pid = trainer.pid
            else:
                run_id = await start_default_run(url, runs, args.max_seconds)
                pid = json.loads((runs / run_id / "status.json").read_text()).get("pid")
                trainer_pid = pid if args.trainer == "process" and pid != server_pid else None
            os.nice(args.client_nice)  # after the server and the run have started at the shell's priority
            rows = await measure(args, url, server_pid, runs, trainer_pid, run_id)
            print("# summary")
            print("\n".join(rows))
        finally:
            if trainer is not None:
                trainer.terminate()
                trainer.wait(timeout=30)
            else:
                RunStore(runs).stop(RunStore(runs).runs()[0]["run_id"]) if RunStore(runs).runs() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="1,8,30,100", help="comma-separated session counts, measured in turn")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds watched per count (unwatched: half of it)")
    ap.add_argument("--present", action="store_true", help="the presenter view (?present=1) instead of Monitor")
    ap.add_argument("--trainer", choices=["process", "server", "cli"], default="process",
                    help="process: Start pressed on the Train page, trained as the dashboard does (a process of the "
                         "run's own); server: the same on a thread of the server (GAN_STUDIO_WORKERS=thread); cli: a "
                         "`python -m gan_core train` the dashboard follows")
    ap.add_argument("--workers", default="1", help="--trainer process: GAN_STUDIO_WORKERS (1 in classroom mode); "
                                                   "--trainer cli: its --workers")
    ap.add_argument("--classroom", action="store_true",
                    help="a teacher password: every session a viewer, the run a `train --workers 1` (the teacher's)")
    ap.add_argument("--client-nice", type=int, default=10,
                    help="this client's niceness: the browsers of a lecture hall run elsewhere, not on these cores")
    ap.add_argument("--preset", default="fast-mnist", help="--trainer cli only (the Train page's default preset)")
    ap.add_argument("--max-seconds", type=int, default=3600)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
