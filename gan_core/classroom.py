"""Classroom mode without a UI: the teacher password, the server's concurrent-run limit and where its runs train.

The dashboard (ui/roles.py) decides who may do what; this module only answers "is there a password, does this
guess match it", "how many runs may train at once here" and "in which processes"."""
from __future__ import annotations

import hmac
import logging
import os
import threading
import time

PASSWORD_ENV = "GAN_STUDIO_TEACHER_PASSWORD"
MAX_RUNS_ENV = "GAN_STUDIO_MAX_RUNS"
MAX_RUNS_CEILING = 64
WORKERS_ENV = "GAN_STUDIO_WORKERS"


def teacher_password(secrets=None) -> str | None:
    """The teacher password from the environment, else from `teacher_password` in a secrets mapping; None = off.

    `secrets` is any mapping (Streamlit's st.secrets); reading it may raise when no secrets file exists."""
    value = os.environ.get(PASSWORD_ENV)
    if not value and secrets is not None:
        try:
            value = secrets.get("teacher_password")
        except Exception:  # no secrets.toml, or one that does not parse: classroom mode stays off
            value = None
    return value if isinstance(value, str) and value else None


def password_matches(guess: str | None, password: str | None) -> bool:
    """Constant-time comparison (a timing attack cannot learn the password character by character)."""
    if not password or not isinstance(guess, str):
        return False
    return hmac.compare_digest(guess.encode("utf-8"), password.encode("utf-8"))


LOG = logging.getLogger("gan_studio.login")


class LoginThrottle:
    """Wrong teacher passwords counted for the whole server, every session together: after FREE_FAILURES wrong guesses
    in a row, the next guess is checked only after a delay that doubles with each failure (up to MAX_DELAY_S); a guess
    that comes earlier is refused unchecked. So opening more sessions adds no guesses. Each failure is one log line
    (never the guess). A right password resets the count; so do FORGET_S seconds without a failure."""
    FREE_FAILURES = 3
    MAX_DELAY_S = 60.0
    FORGET_S = 600.0

    def __init__(self, clock=time.monotonic):
        self.clock, self.lock = clock, threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.failures, self.next_check_at, self.last_failure_at = 0, float("-inf"), float("-inf")

    def attempt(self, guess: str | None, password: str | None, who: str = "a session") -> tuple[bool, float]:
        """(matched, seconds before the server checks another guess)."""
        with self.lock:
            now = self.clock()
            if self.failures and now - self.last_failure_at > self.FORGET_S:
                self.reset()
            if now < self.next_check_at:
                wait = self.next_check_at - now
                LOG.warning("teacher login refused unchecked from %s: %d wrong passwords in a row on this server; "
                            "next check in %.0f s", who, self.failures, wait)
                return False, wait
            if password_matches(guess, password):
                self.reset()
                return True, 0.0
            self.failures += 1
            self.last_failure_at = now
            delay = 0.0 if self.failures < self.FREE_FAILURES else min(self.MAX_DELAY_S,
                                                                      2.0 ** (self.failures - self.FREE_FAILURES))
            self.next_check_at = now + delay
            LOG.warning("teacher login failed from %s: wrong password (%d in a row on this server); next check in %.0f s",
                        who, self.failures, delay)
            return False, delay


LOGIN = LoginThrottle()  # one per server process: every session's guesses share it


def machine_max_runs() -> int:
    """What this machine holds without runs fighting for it: one run per GPU, else one per two CPU cores."""
    try:
        import torch
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        gpus = 0
    if gpus:
        return gpus
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // 2)


def max_runs_setting() -> tuple[int, str]:
    """(limit, note): GAN_STUDIO_MAX_RUNS when it is a whole number from 1 to 64, else the machine's default.
    The note says why a given value was ignored ("" when nothing was)."""
    raw = os.environ.get(MAX_RUNS_ENV, "").strip()
    default = machine_max_runs()
    if not raw:
        return default, ""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if 1 <= value <= MAX_RUNS_CEILING:
        return value, ""
    return default, f"{MAX_RUNS_ENV}={raw[:20]!r} is not a whole number from 1 to {MAX_RUNS_CEILING}; using {default}"


def workers_setting(classroom: bool) -> tuple[str | None, str]:
    """(workers, note) for the dashboard's RunStore: where its runs train. GAN_STUDIO_WORKERS is `thread` (a thread
    of the server, as before), `auto` or a whole number from 1 to 64 (a `train --workers` process of the run's own,
    whose Python never waits for the pages' interpreter lock). Unset: `auto` (the cores nobody else is using), or 1
    in classroom mode, where a lecture hall's pages need the server's core while the run keeps its own. The note
    says why a given value was ignored ("" when nothing was)."""
    default = "1" if classroom else "auto"
    raw = os.environ.get(WORKERS_ENV, "").strip().lower()
    if not raw:
        return default, ""
    if raw == "thread":
        return None, ""
    if raw == "auto" or (raw.isdigit() and 1 <= int(raw) <= MAX_RUNS_CEILING):
        return str(int(raw)) if raw.isdigit() else raw, ""
    return default, (f"{WORKERS_ENV}={raw[:20]!r} is not thread, auto or a whole number from 1 to {MAX_RUNS_CEILING}; "
                     f"using {default}")
