"""What every session watching a live run shares: drawn once per run step, process-wide, for any number of viewers.

A live view refreshes every few seconds in every open tab; 100 tabs each building their own figures, diagnosis and
grid image took the interpreter lock from the training thread (benchmarks/classroom_load.py). Each function here
is keyed by version(snap), which changes when the run moves, so the first session to see a step builds it and the
others reuse the very same objects. What these return is shared: read it, never modify it."""
from __future__ import annotations

import threading
import time

import streamlit as st

from gan_core.insight.diagnosis import diagnose_snapshot, mixture_modes
from gan_core.insight.reference import reference_for
from ui import charts


REDRAW_S = 1.0  # a live run's views are drawn anew at most this often, however fast it trains and however many watch


class Frames:
    """The snapshot every live view of a run draws, renewed at most every REDRAW_S (at once when the status changes):
    a run in a process of its own logs several rows a second, and each new row made the next session rebuild every
    figure (classroom_load.py: 100 viewers, ~66 ms of server CPU per refresh, a new step every 7 s)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held: dict[tuple, tuple[float, object]] = {}

    def frame(self, snap, now: float | None = None):
        now = time.monotonic() if now is None else now
        key = (snap.run_dir, snap.run_id)
        with self._lock:
            made, held = self._held.get(key, (float("-inf"), None))
            if held is not None and now - made < REDRAW_S and held.status == snap.status and held.step <= snap.step:
                return held
            if len(self._held) > 256:
                self._held.clear()
            self._held[key] = (now, snap)
            return snap


FRAMES = Frames()


def frame(snap):
    """The snapshot to draw for a live run now: `snap`, or one at most REDRAW_S older with the same status."""
    return FRAMES.frame(snap)


def version(snap) -> tuple:
    """What a live view draws from a snapshot changes only with these (the folder too: two runs folders may hold
    the same run id)."""
    return (snap.run_dir, snap.run_id, snap.status, snap.step, len(snap.metrics), snap.latest_grid_step,
            len(snap.checkpoints))


@st.cache_resource(max_entries=32, show_spinner=False)
def reference(preset: str):
    """reference_for (a CSV read) once per preset for the whole server."""
    return reference_for({"preset": preset})


@st.cache_resource(max_entries=64, ttl=600, show_spinner=False)
def _curves(key: tuple, smoothing: float, with_reference: bool, _snap) -> tuple:
    df = _snap.metrics
    found = reference(_snap.config.preset if _snap.config else "") if with_reference else None
    ref, label = (found[1], found[0]) if found else (None, "")
    points = _snap.config is not None and mixture_modes(_snap.config.dataset) is not None
    return tuple(charts.shared(f) for f in (
        charts.with_reference(charts.loss_figure(df, smoothing), ref, ["d_loss", "g_loss"], label),
        charts.with_reference(charts.scores_figure(df, _snap.score_kind, smoothing), ref, ["d_real", "d_fake"], label),
        charts.with_reference(charts.grad_figure(df, smoothing), ref, ["grad_norm_d", "grad_norm_g"], label),
        charts.quality_figure(df, points=points)))


def curve_figures(snap, smoothing: float, with_reference: bool = False) -> tuple:
    """(loss, D scores, gradient norms, quality or None) of the run as `snap` has it."""
    return _curves(version(snap), smoothing, with_reference, snap)


@st.cache_resource(max_entries=64, ttl=600, show_spinner=False)
def _diagnosis(key: tuple, _snap) -> list:
    return diagnose_snapshot(_snap)


def diagnosis(snap) -> list:
    """diagnose_snapshot(snap), once per step (a scrubbed past step is a version of its own)."""
    return _diagnosis(version(snap), snap)


@st.cache_resource(max_entries=64, ttl=600, show_spinner=False)
def histogram(key: tuple, counts: tuple, title: str):
    return charts.shared(charts.histogram_figure(list(counts), title))


@st.cache_resource(max_entries=256, ttl=600, show_spinner=False)
def _grid_png(_store, root: str, run_id: str, step: int) -> bytes | None:
    try:
        return _store.grid_png(run_id, step)
    except (OSError, ValueError, KeyError):
        return None


def grid_png(store, run_id: str, step: int | None) -> bytes | None:
    """A saved grid as the PNG file it is, shared by every session (st.image would re-encode an array for each
    session at each refresh); None when there is none or it cannot be read. Draw it with output_format="PNG"."""
    return None if step is None else _grid_png(store, str(store.root), run_id, step)


@st.cache_resource(max_entries=64, ttl=30, show_spinner=False)
def _fork(_store, root: str, run_id: str):
    return _store.handle(run_id).fork_info()


def fork(store, run_id: str):
    """A run's fork_info (a file read) at most every 30 s per run."""
    return _fork(store, str(store.root), run_id)


@st.cache_resource(ttl=1.0, show_spinner=False)
def _listing(_store, root: str) -> tuple[float, list[dict]]:
    return time.monotonic(), _store.runs()


def runs_after(store, since: float) -> list[dict] | None:
    """store.runs() (a folder scan and a status read per run) at most once a second for all sessions together;
    None while the shared listing is older than `since` (a page drawn from a fresher listing has nothing to
    compare it with)."""
    made, listing = _listing(store, str(store.root))
    return listing if made >= since else None
