"""How often each live view refreshes: 2 s while few watch; longer for viewers when a lecture hall does.

Every session's refresh is a script run holding the interpreter lock that the training thread also needs; 100
sessions at 2 s took a live run to 18% of its speed (benchmarks/classroom_load.py). So the server counts the
sessions watching and spreads them: the teacher (classroom mode, unlocked) always refreshes every REFRESH_S,
everyone else at an interval that keeps all viewers' refreshes together near VIEWER_RERUNS_PER_S, never above
MAX_REFRESH_S (so a viewer still sees a new step at least every ~4 s). A view asks the browser for its interval
when the page is drawn (`run_every`): a class arriving stretches the sessions that open after it."""
from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid

import streamlit as st

REFRESH_S = 2.0  # the teacher's, and everyone's while few watch
MAX_REFRESH_S = 2.5  # a viewer's longest: a new step shows within 2.5 s plus one rerun's latency and a frame's age (live.py)
BAND_S = 0.5  # intervals in whole bands: sessions drawn at nearly the same load ask for the same interval
VIEWER_RERUNS_PER_S = 12.0  # all viewers' live refreshes together, per second, before they are spread out
SIDEBAR_FACTOR = 3  # the sidebar's run list changes rarely: it refreshes at 3x the page's interval
SEEN_FOR_S = 12.0  # a session that has not refreshed for this long has left
VIEWER_NICE = 10  # a classroom viewer's rerun thread yields the cores to the teacher's run (CFS weight ~1/10)


class Watchers:
    """The sessions that refreshed a live view lately, process-wide (thread-safe: every session's script thread)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, bool]] = {}  # session -> (when, teacher)

    def seen(self, session: str, teacher: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._seen[session] = (now, teacher)
            if len(self._seen) > 64 and len(self._seen) % 64 == 0:  # forget those gone, now and then
                for key in [k for k, (t, _) in self._seen.items() if now - t > SEEN_FOR_S]:
                    del self._seen[key]

    def viewers(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            return sum(1 for t, teacher in self._seen.values() if not teacher and now - t <= SEEN_FOR_S)


WATCHERS = Watchers()


def interval_for(teacher: bool, viewers: int) -> float:
    """The refresh interval of one session: REFRESH_S for the teacher; for a viewer, stretched so that `viewers`
    sessions refresh about VIEWER_RERUNS_PER_S times a second together, in BAND_S steps, at most MAX_REFRESH_S."""
    if teacher:
        return REFRESH_S
    wanted = viewers / VIEWER_RERUNS_PER_S
    banded = BAND_S * -(-wanted // BAND_S)  # rounded up to a whole band
    return min(MAX_REFRESH_S, max(REFRESH_S, banded))


def _session() -> str:
    if "refresh_session" not in st.session_state:
        st.session_state["refresh_session"] = uuid.uuid4().hex
    return st.session_state["refresh_session"]


def is_teacher() -> bool:
    """In classroom mode, the unlocked teacher; without it every session is a peer (and stretches with the rest)."""
    from ui import roles
    return roles.classroom() and roles.can_control()


def yield_to_the_run(teacher: bool) -> None:
    """A classroom viewer's rerun runs at a lower priority than the teacher's run and page: on a loaded laptop the
    lecture hall's refreshes wait, not the run. Linux priorities are per thread, and Streamlit runs each rerun on a
    thread of its own, so this lasts one rerun and never reaches the teacher's session or the runs it starts."""
    from ui import roles
    if teacher or not roles.classroom() or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):  # a platform without per-thread priorities: nothing to yield
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < VIEWER_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, VIEWER_NICE)


def live_interval() -> float:
    """The interval to ask for now, when a live view is drawn with its page (`run_every`); counts this session as
    watching. It is not re-asked on every refresh: a page redraw asked by the load itself, for every session at
    once, made a storm of full reruns that the browsers' timers kept interrupting (classroom_load.py: no rerun at
    all completed with 100 sessions). A session asks again whenever its page is drawn anew (a run starts or ends,
    the user moves), and keeps counting as watching at each refresh (`still_watching`)."""
    teacher = is_teacher()
    yield_to_the_run(teacher)
    WATCHERS.seen(_session(), teacher)
    return interval_for(teacher, WATCHERS.viewers())


def still_watching() -> None:
    """Called on each refresh of a live view: this session is still one of those watching."""
    teacher = is_teacher()
    yield_to_the_run(teacher)
    WATCHERS.seen(_session(), teacher)
