"""Which threads may use a pool of OpenMP threads (only training threads), how runs share the cores, and how a run
finds the thread count the machine actually rewards (AdaptiveThreads).

GNU OpenMP (PyTorch's on Linux) spins briefly before a waiting thread sleeps, which is what makes many small
parallel ops fast. Once a process holds more pooled threads than cores it cuts that spin to ~100 iterations, and a
pool lives as long as the thread that made it. So one stray pool anywhere (the thread that built a Trainer, a
dashboard script, the evaluation worker) throttles the training thread's own: classic-mlp on 2 threads went from
18.2k to 7.8k images/s on a 2-core CPU (benchmarks/throughput.py). Every other thread computes on one thread.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

import torch


def one_intra_op_thread_here() -> None:
    """Compute on this thread without an OpenMP pool of its own (see the module's docstring). A thread that has
    already made one keeps it; call this before its first parallel op."""
    torch.set_num_threads(1)


@contextlib.contextmanager
def torch_threads(n: int):
    """A block (or, as `@torch_threads(n)`, a function) on n intra-op threads; the thread's count is restored.
    torch's setting is per calling thread (OpenMP/MKL thread-local): other threads keep theirs."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------- sharing the cores
_runs_here = 0
_runs_lock = threading.Lock()


def usable_cores() -> int:
    """Cores this process may use (its affinity mask), divided among torchrun's processes on this node."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


@contextlib.contextmanager
def training_run():
    """Count a run as training in this process while the block runs (the dashboard's store may train several)."""
    global _runs_here
    with _runs_lock:
        _runs_here += 1
    try:
        yield
    finally:
        with _runs_lock:
            _runs_here -= 1


def runs_training_here() -> int:
    return _runs_here


def core_share() -> int:
    """One run's share of the cores: runs in one process split them, so their OpenMP pools never hold more threads
    than there are cores (beyond that libgomp stops spin-waiting and every barrier sleeps)."""
    return max(1, usable_cores() // max(1, _runs_here))


def idle_cpu_ticks() -> tuple[int, int] | None:
    """(idle, total) CPU ticks of the whole machine since boot (Linux /proc/stat), None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user..steal


class IdleCores:
    """How many cores nobody used between two calls (other processes included): a pool only helps if they exist."""

    def __init__(self):
        self.cores = os.cpu_count() or 1
        self._last = idle_cpu_ticks()

    def since_last(self) -> float | None:
        now = idle_cpu_ticks()
        last, self._last = self._last, now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return self.cores * (now[0] - last[0]) / (now[1] - last[1])


# A pool is tried when at least this share of each extra core it needs was idle while one thread trained. Half a
# core kept the dashboard's own runs on 1 thread for good: a browser watching Monitor and the page reruns leave
# ~0.2-0.6 of a core idle on 2 cores, and in one side-by-side run 2 threads trained 3,089 images/s watched against
# 1,832 on 1 (benchmarks/sessions.py --threads 2,0); the probe decides. Beside two processes burning both cores the
# idle share is ~0, so those runs still skip a probe that can only lose.
FREE_CORE_SHARE = 0.25


class AdaptiveThreads:
    """Picks a run's intra-op thread count from what the machine actually gives it, fed timings of ~2-s spans.

    On a busy machine a pool of N threads waits at every barrier for whichever thread the OS descheduled (fast-mnist
    beside other work: 5-70 images/s on 2 threads against ~200-400 on one), while one thread never waits. So: time
    at least `probe_seconds` at 1 thread; if the machine had cores to spare meanwhile (`idle_cores`, when known: at
    least FREE_CORE_SHARE of each extra core), time as much at the ceiling (the run's share of the cores) and keep
    the faster, else stay on 1 without paying for a probe that can only lose (and look again after
    `busy_recheck_seconds`: that costs nothing). Probe again after `recheck_seconds` (doubled while the answer stays
    the same, up to `max_recheck_seconds`, and at least `probe_cost` times the span a losing pool took, so probing
    costs ~10%), at once when the share changes, and when the kept pool's rate falls below `drop` of what it
    measured (the machine became busy). Pure logic: no clock, no torch; the trainer measures and applies the count.
    """

    def __init__(self, ceiling: int, probe_seconds: float = 2.0, recheck_seconds: float = 20.0,
                 max_recheck_seconds: float = 160.0, drop: float = 0.5, probe_cost: float = 10.0,
                 busy_recheck_seconds: float = 5.0):
        self.probe_seconds, self.base_recheck, self.max_recheck, self.drop, self.probe_cost = \
            probe_seconds, recheck_seconds, max_recheck_seconds, drop, probe_cost
        self.recheck = recheck_seconds
        self.busy_recheck = busy_recheck_seconds
        self.rates: dict[int, float] = {}  # images/s measured per thread count in the latest probe
        self.chosen: int | None = None
        self.busy_cores = False  # the latest probe skipped the pool: no core was free
        self._start_probe(ceiling)

    def _start_probe(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self._todo = [1] if self.ceiling == 1 else [1, self.ceiling]
        self.rates, self._spans = {}, {}
        self.threads = self._todo[0]
        self._window = [0.0, 0.0, 0.0, 0.0]  # seconds, images, idle core-seconds, seconds with idle known

    def observe(self, seconds: float, images: float, ceiling: int, idle_cores: float | None = None) -> int:
        """A span ran at `self.threads`; returns the count for the next one."""
        if ceiling != self.ceiling:  # a run started or ended beside this one
            self._start_probe(ceiling)
            return self.threads
        w = self._window
        w[0] += seconds
        w[1] += images
        if idle_cores is not None:
            w[2] += idle_cores * seconds
            w[3] += seconds
        if w[0] < self.probe_seconds:
            return self.threads
        span, rate, idle = w[0], w[1] / w[0], (w[2] / w[3] if w[3] else None)
        self._window = [0.0, 0.0, 0.0, 0.0]
        if self._todo:  # probing: this span measured one candidate
            n = self._todo.pop(0)
            self.rates[n], self._spans[n] = rate, span
            self.busy_cores = bool(self._todo) and idle is not None and idle < FREE_CORE_SHARE * (self._todo[0] - 1)
            if self._todo and not self.busy_cores:
                self.threads = self._todo[0]
                return self.threads
            self._todo = []
            best = max(self.rates, key=self.rates.get)
            self.recheck = min(self.recheck * 2, self.max_recheck) if best == self.chosen else self.base_recheck
            if self.busy_cores:  # no pool was tried, so looking again costs nothing: a burst (a page loading) passes
                self.recheck = self.busy_recheck
            losing_pools = [self._spans[k] for k in self.rates if k != best and k > 1]
            self.recheck = max([self.recheck] + [self.probe_cost * s for s in losing_pools])
            self.chosen = self.threads = best
            self._held = 0.0
            return self.threads
        self._held += span
        if self.threads > 1 and rate < self.drop * self.rates[self.threads]:  # the machine became busy
            self.recheck = self.base_recheck
            self._start_probe(self.ceiling)
        elif self._held >= self.recheck:
            self._start_probe(self.ceiling)
        return self.threads


# ---------------------------------------------------------------------- worker processes (a local group)
# A worker's share of a batch may not fall below this: per image, fast-mnist on one thread costs 0.48 ms at batch
# 64 and 0.51 at 32 (CPU time, 2-core EPYC, ~2 ms of each step does not shrink with the batch: Adam, EMA, op
# dispatches); a worker adds ~0.5 ms per step averaging gradients through shared memory (shared_mean.py) and waits
# for the slowest rank at each meeting (2 per step, 6 more with whole-batch BatchNorm), and two busy processes each
# run ~5% slower than one alone. 2 workers made 1.3-1.4x one thread (benchmarks/throughput.py --sections cores);
# below 16 the fixed part takes over.
MIN_WORKER_BATCH = 16
# Starting a worker costs a few seconds (import torch, load the data); shorter runs stay in one process.
MIN_GROUP_SECONDS, MIN_GROUP_STEPS = 20.0, 500


class FreeCores:
    """Cores free for this process: what the machine left idle since construction plus what this process used
    itself (a starting CLI is busy importing), from /proc/stat and os.times. None where that cannot be read."""

    def __init__(self):
        self._idle = IdleCores()
        self._own, self._start = self._cpu_seconds(), time.monotonic()

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def now(self, least_seconds: float = 0.3) -> float | None:
        wait = least_seconds - (time.monotonic() - self._start)
        if wait > 0:
            threading.Event().wait(wait)  # a window long enough for /proc/stat's 10-ms ticks to mean something
        idle = self._idle.since_last()
        if idle is None:
            return None
        return idle + (self._cpu_seconds() - self._own) / max(1e-6, time.monotonic() - self._start)


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (macOS): ask the kernel below
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # not ours to signal, but it exists
        pass
    return True


class CoreClaims:
    """How many worker processes the other runs of this machine started with (a file per run, named by its pid, in a
    folder of this user's), so that two `auto` runs started together do not both take every core: idle cores cannot
    show a run that is still starting, and two 2-worker groups on 2 cores wait for each other at every meeting (two
    at once made 2,600 images/s together; two single processes ~4,400). Where files or locks fail, no claims."""

    def __init__(self, folder: Path | None = None):
        user = getattr(os, "getuid", lambda: "user")()
        self.folder = folder or Path(tempfile.gettempdir()) / f"gan-studio-cores-{user}"
        self.mine: Path | None = None

    @contextlib.contextmanager
    def deciding(self):
        """Hold the machine-wide lock while a run measures the free cores, decides and claims."""
        try:
            import fcntl
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = open(self.folder / ".lock", "a")
        except (ImportError, OSError):  # no lock here: decide without one
            lock = None
        with lock or contextlib.nullcontext():
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def others(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for path in self.folder.glob("[0-9]*"):
                with contextlib.suppress(OSError, ValueError):
                    pid = int(path.name)
                    if pid == os.getpid():
                        continue
                    if not process_alive(pid):
                        path.unlink()
                        continue
                    total += int(path.read_text())
        return total

    def claim(self, workers: int) -> None:
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / str(os.getpid())
            path.write_text(str(workers))
            self.mine = path

    def release(self) -> None:
        if self.mine is not None:
            with contextlib.suppress(OSError):
                self.mine.unlink()
            self.mine = None


def local_workers(batch_size: int, cores: int, free: float | None, long_enough: bool) -> int:
    """How many single-machine worker processes share a run's batch: the most that divide the batch into shares of
    at least MIN_WORKER_BATCH, no more than the cores this process may use, and no more than the cores nobody else
    is using (each needs ~3/4 of one free), so beside other work a run takes one core's fair share, as before.
    One for a short run (start-up would cost more than it gains) or when the free cores cannot be measured."""
    if not long_enough or free is None:
        return 1
    best = 1
    for n in range(2, cores + 1):
        if n <= free + 0.25 and batch_size % n == 0 and batch_size // n >= MIN_WORKER_BATCH:
            best = n
    return best
