"""The gradient average of a local group (worker processes of one run on one machine) through shared memory.

Why not gloo: its all-reduce goes over TCP on loopback through an I/O thread of each process, and on a machine whose
every core trains that thread waits to be scheduled. On a 2-core EPYC, fast-mnist with 2 workers spent 7.9 ms of a
28-ms step in the two nets' all-reduces (a 1-float all-reduce still cost ~2 ms), most of what the second worker
brought. Here each rank copies its gradients into its own slot of one shared buffer, publishes the call's number in
its own counter, waits (yielding its core) until every rank's counter has reached it, and sums the slots in rank
order: element-wise adds, so every rank gets the same bits and the weights never part.

Two sets of slots alternate between calls: a fast rank may write call k+1 while a slow one still reads call k, and it
cannot reach call k+2 before every rank has arrived at k+1, which each does only after it has read call k.
The counters are plain stores, published in program order on x86-64 (its memory model); elsewhere gloo serves.
"""
from __future__ import annotations

import mmap
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch
from torch._utils import _unflatten_dense_tensors  # views of a flat buffer shaped as the tensors (as gloo's path)

from .threads import process_alive

# Wait by yielding the core this long, then in short sleeps (~0.1-0.2 ms here): a longer spin took the core from the
# other ranks wherever processes outnumber cores (two 2-worker runs on 2 cores: 2,156 images/s together, not ~3,000).
SPIN_SECONDS = 0.0002
SLEEP_SECONDS = 0.0001
PEER_CHECK_SECONDS = 1.0  # while waiting longer, look this often whether every rank's process still lives
TIMEOUT_SECONDS = 1800.0  # gloo's default


def supported() -> bool:
    return sys.platform == "linux" and platform.machine().lower() in ("x86_64", "amd64")


class SharedMean:
    """`average(tensors)`: every rank's float32 `tensors` replaced by their mean over the ranks, in place. All ranks
    make the same calls in the same order (as with any collective). Build with `open`."""

    def __init__(self, buffer: mmap.mmap, rank: int, world_size: int, capacity: int):
        self.rank, self.world_size, self.capacity = rank, world_size, capacity
        self._buffer = buffer
        header = np.frombuffer(buffer, dtype=np.int64, count=2 * world_size)
        self.counters, self.pids = header[:world_size], header[world_size:]
        self.sets = torch.frombuffer(buffer, dtype=torch.float32, offset=header.nbytes,
                                     count=2 * world_size * capacity).view(2, world_size, capacity)
        self._sum = torch.empty(capacity)
        self.calls = 0
        self.pids[rank] = os.getpid()

    def __deepcopy__(self, memo):  # a copy of a net that holds it (live evaluation's) shares the group's buffer
        return self

    @staticmethod
    def size(world_size: int, capacity: int) -> int:
        return 16 * world_size + 4 * 2 * world_size * capacity

    @classmethod
    def open(cls, ctx, capacity: int) -> "SharedMean | None":
        """A collective of the group `ctx` (distributed.Context): rank 0 makes the buffer (in /dev/shm when there is
        one), every rank maps it, and its name is removed once all have (nothing is left behind if a rank dies).
        None on every rank when any rank could not, or where this is unsupported: then gloo averages."""
        if not supported():
            return None
        size, path, error, buffer = cls.size(ctx.world_size, capacity), None, None, None
        if ctx.is_main:
            try:
                folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
                fd, path = tempfile.mkstemp(prefix="gan-studio-grads-", dir=folder)
                try:
                    os.posix_fallocate(fd, 0, size)  # no room fails here, not as a SIGBUS mid-run
                finally:
                    os.close(fd)
            except OSError as e:
                error, path = f"shared memory: {e}", None
        path = ctx.share(path)
        if path is not None:
            try:
                with open(path, "r+b") as f:
                    buffer = mmap.mmap(f.fileno(), size)
            except OSError as e:
                error = f"shared memory: {e}"
        error = ctx.first_error(error)  # every rank has mapped it (or failed) past this point
        if ctx.is_main and path is not None:
            os.unlink(path)
        if error or buffer is None:
            return None
        shared = cls(buffer, ctx.rank, ctx.world_size, capacity)
        ctx.first_error(None)  # every pid is written before anyone may wait on it
        return shared

    def average(self, tensors: list[torch.Tensor]) -> None:
        slots = self._meet(tensors)
        n = sum(t.numel() for t in tensors)
        total = torch.add(slots[0, :n], slots[1, :n], out=self._sum[:n])
        for r in range(2, self.world_size):
            total.add_(slots[r, :n])
        total.div_(self.world_size)
        torch._foreach_copy_(tensors, _unflatten_dense_tensors(total, tensors))

    def broadcast(self, values: torch.Tensor) -> torch.Tensor:
        """Rank 0's float64 `values` on every rank (rank 0 too gets them back from the buffer)."""
        slots = self._meet([values.view(torch.float32)] if self.rank == 0 else [])
        return slots[0, :2 * values.numel()].view(torch.float64).clone()

    def _meet(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """Copy `tensors` into this rank's slot of this call's set, publish, and wait for every rank."""
        self.calls += 1
        k = self.calls
        slots = self.sets[k % 2]
        if tensors:
            n = sum(t.numel() for t in tensors)
            torch._foreach_copy_(list(_unflatten_dense_tensors(slots[self.rank, :n], tensors)), tensors)
        self.counters[self.rank] = k
        self._wait(k)
        return slots

    def _wait(self, k: int) -> None:
        counters = self.counters
        if counters.min() >= k:
            return
        start = checked = time.monotonic()
        while counters.min() < k:
            now = time.monotonic()
            if now - start < SPIN_SECONDS:
                os.sched_yield()
                continue
            time.sleep(SLEEP_SECONDS)
            if now - checked >= PEER_CHECK_SECONDS:
                checked = now
                self._check_peers(k, now - start)

    def _check_peers(self, k: int, waited: float) -> None:
        for r in range(self.world_size):
            if self.counters[r] < k and not process_alive(int(self.pids[r])):
                raise RuntimeError(f"worker process {r} of this run has ended")
        if waited > TIMEOUT_SECONDS:
            raise RuntimeError(f"worker processes did not meet within {TIMEOUT_SECONDS:.0f} s")
