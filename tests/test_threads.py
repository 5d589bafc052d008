"""Cores are shared, never fought over: runs in one process split them, and a run settles on the thread count
that actually trains faster on the machine as it is (fed faked timings here; real speed: benchmarks/busy.py)."""
from __future__ import annotations

import threading

import pytest

import gan_core.engine.threads as threads_module
from gan_core.engine.threads import AdaptiveThreads, core_share, training_run


def run_windows(policy: AdaptiveThreads, images_per_s, seconds: float, window: float = 0.25, ceiling: int = 4) -> list:
    """Feed `seconds` of logged windows whose speed is images_per_s(threads); returns the thread count per window."""
    used = []
    for _ in range(round(seconds / window)):
        used.append(policy.threads)
        policy.observe(window, images_per_s(policy.threads) * window, ceiling)
    return used


QUIET = {1: 1000.0, 4: 3000.0}.get  # every core is free: the pool wins
BUSY = {1: 900.0, 4: 60.0}.get  # another process burns the cores: the pool waits at every barrier


@pytest.mark.parametrize("machine, best", [(QUIET, 4), (BUSY, 1)])
def test_the_faster_thread_count_is_kept(machine, best):
    policy = AdaptiveThreads(ceiling=4, probe_seconds=1.0, recheck_seconds=20.0)
    used = run_windows(policy, machine, seconds=15)
    assert policy.chosen == best
    assert used[-30:] == [best] * 30  # after the probe it stays on the winner until the re-check
    assert set(used[:8]) == {1, 4}  # it measured both, a second each


def test_a_machine_that_becomes_busy_is_noticed_within_seconds_and_quiet_again_at_the_recheck():
    policy = AdaptiveThreads(ceiling=4, probe_seconds=1.0, recheck_seconds=20.0)
    run_windows(policy, QUIET, seconds=10)
    assert policy.chosen == 4
    used = run_windows(policy, BUSY, seconds=5)  # the pool's rate falls below half: probe again at once
    assert policy.chosen == 1 and used[-4:] == [1] * 4
    run_windows(policy, QUIET, seconds=25)  # the re-check (20 s later) finds the free cores again
    assert policy.chosen == 4


def test_rechecks_back_off_while_the_answer_stays_the_same():
    policy = AdaptiveThreads(ceiling=4, probe_seconds=1.0, recheck_seconds=20.0, max_recheck_seconds=80.0)
    used = run_windows(policy, BUSY, seconds=400)
    probes_at_4 = sum(1 for a, b in zip(used, used[1:]) if a == 1 and b == 4)
    assert 3 <= probes_at_4 <= 7  # 20, 40, 80, 80, … s apart, not every 20 s (would be ~18)
    assert used.count(4) / len(used) < 0.05  # the busy machine costs the probe little


def test_a_share_that_changes_is_probed_afresh():
    policy = AdaptiveThreads(ceiling=4)
    run_windows(policy, QUIET, seconds=5)
    assert policy.chosen == 4
    policy.observe(0.25, 250, ceiling=1)  # a second run started beside it: one core each
    assert policy.threads == 1
    assert set(run_windows(policy, QUIET, seconds=60, ceiling=1)) == {1}


def test_runs_in_one_process_split_the_cores(monkeypatch):
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 4)
    assert core_share() == 4
    with training_run():
        assert core_share() == 4
        with training_run():
            assert core_share() == 2
    assert core_share() == 4


def test_two_live_runs_in_one_store_each_get_half_the_cores(store, tiny_config, monkeypatch):
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 4)
    both_running = threading.Barrier(2, timeout=60)
    seen: dict[str, int] = {}

    def at_first_step(trainer):
        if trainer.step == 1:
            both_running.wait()  # the two training loops are live together
            seen[trainer.cfg.name] = core_share()
            both_running.wait()  # neither ends before the other has looked

    ids = [store.start(tiny_config(arch="mlp", name=name, steps=3), hooks=[at_first_step]) for name in ("a", "b")]
    assert [store.wait(i, timeout=60) for i in ids] == ["finished", "finished"]
    assert seen == {"a": 2, "b": 2}
    alone = store.start(tiny_config(arch="mlp", name="alone", steps=2),
                        hooks=[lambda t: seen.setdefault("alone", core_share())])
    assert store.wait(alone, timeout=60) == "finished"
    assert seen["alone"] == 4


def test_no_pool_is_tried_while_other_work_leaves_no_core_free():
    policy = AdaptiveThreads(ceiling=4, probe_seconds=1.0, recheck_seconds=20.0)
    used = []
    for _ in range(200):  # 50 s of spans during which the machine had 0.3 cores idle
        used.append(policy.threads)
        policy.observe(0.25, BUSY(policy.threads) * 0.25, 4, idle_cores=0.3)
    assert set(used) == {1} and policy.chosen == 1 and policy.busy_cores
    run_windows(policy, QUIET, seconds=25)  # cores free again (idle unknown here): the next re-check tries the pool
    assert policy.chosen == 4


def test_a_browser_watching_on_a_two_core_machine_still_lets_the_pool_be_tried():
    """The dashboard's case: Chromium drawing Monitor and the page reruns leave ~0.4 of the second core idle, and
    two threads still train faster there than one (benchmarks/sessions.py); the run must find that out."""
    policy = AdaptiveThreads(ceiling=2, probe_seconds=1.0, recheck_seconds=20.0)
    watched = {1: 1400.0, 2: 2300.0}.get
    used = []
    for _ in range(40):  # 10 s
        used.append(policy.threads)
        policy.observe(0.25, watched(policy.threads) * 0.25, 2, idle_cores=0.4)
    assert policy.chosen == 2 and not policy.busy_cores and used[-8:] == [2] * 8


def test_a_short_burst_of_other_work_costs_the_pool_seconds_not_the_whole_recheck():
    """A page loading in the browser (~5 s with no core idle) made the pool's rate drop and a probe find no free
    core; measuring one thread again costs nothing, so the run looks again within seconds, not 20 s later."""
    policy = AdaptiveThreads(ceiling=2, probe_seconds=1.0, recheck_seconds=20.0)
    speed = {1: 1400.0, 2: 2300.0}.get

    def windows(seconds, idle, slow=1.0):
        used = []
        for _ in range(round(seconds / 0.25)):
            used.append(policy.threads)
            policy.observe(0.25, speed(policy.threads) * slow * 0.25, 2, idle_cores=idle)
        return used

    windows(5, idle=0.6)
    assert policy.chosen == 2
    windows(4, idle=0.0, slow=0.3)  # the burst
    assert policy.chosen == 1 and policy.busy_cores
    assert windows(12, idle=0.5)[-8:] == [2] * 8  # back on the pool well before the 20-s re-check


def test_a_pool_that_lost_slowly_is_not_retried_soon():
    policy = AdaptiveThreads(ceiling=4, probe_seconds=1.0, recheck_seconds=20.0, probe_cost=10.0)
    policy.observe(1.0, 900, 4)  # 1 thread: 900 images/s
    policy.observe(6.0, 6 * 60, 4)  # the pool: one 6-s span at 60 images/s
    assert policy.chosen == 1 and policy.recheck >= 60  # such a probe may come back once a minute at most


# ---------------------------------------------------------------------- worker processes (train --workers auto)
def test_an_idle_machine_gets_one_worker_per_core_and_a_busy_one_keeps_one_process():
    from gan_core.engine.threads import local_workers
    assert local_workers(64, cores=2, free=1.9, long_enough=True) == 2  # a quiet 2-core laptop
    assert local_workers(64, cores=8, free=7.8, long_enough=True) == 4  # shares stay >= 16 images
    assert local_workers(64, cores=2, free=0.2, long_enough=True) == 1  # other work holds the cores: the fair share
    assert local_workers(64, cores=4, free=2.1, long_enough=True) == 2  # only the cores nobody uses
    assert local_workers(64, cores=2, free=1.9, long_enough=False) == 1  # a short run: start-up would cost more
    assert local_workers(64, cores=2, free=None, long_enough=True) == 1  # cannot tell: as before
    assert local_workers(48, cores=4, free=4.0, long_enough=True) == 3  # an equal share of every batch
    assert local_workers(24, cores=2, free=2.0, long_enough=True) == 1  # 12 each would waste more than it gains


def test_free_cores_count_what_this_process_itself_used(monkeypatch):
    """A starting CLI keeps a core busy importing torch; that core is the run's own, not someone else's."""
    from gan_core.engine import threads
    ticks = iter([(1000, 4000), (1000, 4060)])  # the machine: no idle tick at all in the window
    monkeypatch.setattr(threads, "idle_cpu_ticks", lambda: next(ticks))
    cpu = iter([10.0, 10.3])  # this process: 0.3 CPU-seconds
    monkeypatch.setattr(threads.FreeCores, "_cpu_seconds", staticmethod(lambda: next(cpu)))
    clock = iter([100.0, 100.3, 100.3])
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    assert threads.FreeCores().now() == pytest.approx(1.0)


HOLD_A_CLAIM = """
import sys
from pathlib import Path
from gan_core.engine.threads import CoreClaims
CoreClaims(Path(sys.argv[1])).claim(2)
print("claimed", flush=True)
sys.stdin.read()  # holds it until the test closes stdin; then ends without releasing (as a killed run would)
"""


def test_two_auto_runs_started_together_do_not_both_take_every_core(tmp_path):
    """A run that has claimed 2 workers counts for the next run's decision until its process is gone (idle cores
    cannot show a run that is still starting): the second run's free cores are what the first left."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    from gan_core.engine.threads import CoreClaims, local_workers
    other = subprocess.Popen([sys.executable, "-c", HOLD_A_CLAIM, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert other.stdout.readline().strip() == "claimed"
        mine = CoreClaims(tmp_path)
        with mine.deciding():
            free = min(1.9, 2 - mine.others())  # the machine looked idle: the other run was still importing
            workers = local_workers(64, cores=2, free=free, long_enough=True)
            mine.claim(workers)
        assert workers == 1 and mine.others() == 2  # its own claim does not count against itself
    finally:
        other.stdin.close()
        other.wait(timeout=60)
    assert mine.others() == 0  # a claim whose process has ended is dropped, and its file with it
    assert sorted(p.name for p in tmp_path.glob("[0-9]*")) == [str(os.getpid())]
    mine.release()
    assert not list(tmp_path.glob("[0-9]*"))
