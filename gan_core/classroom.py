"""Classroom mode without a UI: the teacher password and the server's concurrent-run limit.

The dashboard (ui/roles.py) decides who may do what; this module only answers "is there a password, does this
guess match it" and "how many runs may train at once here"."""
from __future__ import annotations

import hmac
import os

PASSWORD_ENV = "GAN_STUDIO_TEACHER_PASSWORD"
MAX_RUNS_ENV = "GAN_STUDIO_MAX_RUNS"
MAX_RUNS_CEILING = 64


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
