"""The server's playground training time, shared by every session."""
from __future__ import annotations

import threading
import time


class TrainingBudget:
    """Playground training seconds per wall-clock second for every session of the server together (a token bucket):
    each viewer's playground trained up to 0.6 s per 1-s redraw, so enough viewers took both cores from the teacher's
    run. A session asks for what it wants, trains only what it is granted, and gives back what it did not use."""

    def __init__(self, per_second: float = 0.5, burst: float = 0.6, clock=time.monotonic):
        self.per_second, self.burst, self.clock = per_second, burst, clock
        self.lock = threading.Lock()
        self.tokens, self.at = burst, clock()

    def take(self, want: float) -> float:
        """Seconds this session may train now (0 to `want`), charged at once."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
            self.at = now
            grant = max(0.0, min(want, self.tokens))
            self.tokens -= grant
            return grant

    def give_back(self, unused: float) -> None:
        with self.lock:
            self.tokens = min(self.burst, self.tokens + max(0.0, unused))


SHARED_TRAINING = TrainingBudget()  # one per server process: all playground sessions draw on it
