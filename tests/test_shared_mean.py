"""A local group's gradient average through shared memory (engine/shared_mean.py), with threads standing in for
the worker processes: one buffer, one SharedMean per rank."""
import mmap
import os
import subprocess
import sys
import threading

import pytest
import torch

from gan_core.engine import shared_mean
from gan_core.engine.shared_mean import SharedMean


def ranks_on_one_buffer(world: int, capacity: int) -> list[SharedMean]:
    buffer = mmap.mmap(-1, SharedMean.size(world, capacity))
    return [SharedMean(buffer, r, world, capacity) for r in range(world)]


def on_every_rank(ranks, work):
    """work(rank's SharedMean) on one thread per rank; returns their results in rank order, or re-raises."""
    results, errors = [None] * len(ranks), []

    def run(r):
        try:
            results[r] = work(ranks[r])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(ranks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_every_rank_gets_the_mean_with_the_same_bits_call_after_call():
    """Many calls of changing sizes and shapes in a row: the two alternating sets of slots must never let a fast
    rank overwrite what a slow one still reads."""
    world, calls = 3, 300
    ranks = ranks_on_one_buffer(world, capacity=1000)

    def tensors(rank, call):
        g = torch.Generator().manual_seed(1000 * call + rank)
        n = 1 + call % 7
        return [torch.randn(n, 3, generator=g), torch.randn(2, 3, 2, 2, generator=g).to(memory_format=torch.channels_last)
                if call % 2 else torch.randn(5, generator=g)]

    def work(shared):
        out = []
        for call in range(calls):
            mine = tensors(shared.rank, call)
            shared.average(mine)
            out.append(mine)
        return out
    results = on_every_rank(ranks, work)
    for call in range(calls):
        expected = [sum(parts) / world for parts in zip(*(tensors(r, call) for r in range(world)))]
        for r in range(world):
            for got, want, first in zip(results[r][call], expected, results[0][call]):
                torch.testing.assert_close(got, want)
                assert torch.equal(got, first)


def test_rank_0s_values_reach_every_rank():
    ranks = ranks_on_one_buffer(2, capacity=16)
    sent = torch.tensor([1.0, 0.0, 1.0, 0.123456789012345], dtype=torch.float64)
    got = on_every_rank(ranks, lambda s: s.broadcast(sent if s.rank == 0 else torch.zeros(4, dtype=torch.float64)))
    assert all(torch.equal(g, sent) for g in got)


def test_a_rank_whose_process_has_ended_stops_the_wait_with_a_message(monkeypatch):
    """Not a hang until gloo's 30-minute timeout: the waiting rank notices the other process is gone."""
    monkeypatch.setattr(shared_mean, "PEER_CHECK_SECONDS", 0.05)
    ranks = ranks_on_one_buffer(2, capacity=4)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ranks[1].pids[1] = gone.pid
    with pytest.raises(RuntimeError, match="worker process 1 of this run has ended"):
        ranks[0].average([torch.ones(4)])


def test_a_live_rank_that_is_late_is_waited_for():
    ranks = ranks_on_one_buffer(2, capacity=4)
    ranks[1].pids[1] = os.getpid()
    late = threading.Timer(0.3, lambda: ranks[1].average([torch.full((4,), 3.0)]))
    late.start()
    mine = [torch.ones(4)]
    ranks[0].average(mine)
    late.join()
    assert torch.equal(mine[0], torch.full((4,), 2.0))
