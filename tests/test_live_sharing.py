"""A lecture hall on one live run: every session shares one snapshot and one set of drawings per run step, and
viewers refresh less often as more of them watch (the teacher never does). benchmarks/classroom_load.py measures
what this buys; these tests pin the behaviour it relies on."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import plotly.io as pio
import plotly.tools
import pytest
import streamlit as st

from gan_core.runs import files as rf
from gan_core.runs.store import RunRecord
from ui import charts, live, refresh


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def record(tmp_path) -> RunRecord:
    """A run as its trainer leaves it after a few steps: rows, one grid."""
    run_dir = tmp_path / "r"
    (run_dir / "samples").mkdir(parents=True)
    (run_dir / "metrics.csv").write_text(",".join(rf.METRIC_COLUMNS) + "\n")
    rec = RunRecord("r", run_dir)
    rec.add_metrics([{"step": s, "d_loss": 1.0 / s, "g_loss": 0.5, "d_real": 0.6, "d_fake": 0.4, "images_per_s": 100.0}
                     for s in range(1, 11)])
    rec.add_grid(10, np.full((8, 8, 3), 127, np.uint8))
    rec.set_status(status="running", step=10, elapsed=1.0)
    return rec


def test_a_snapshot_is_built_once_per_change_and_every_reader_gets_it(tmp_path):
    rec = record(tmp_path)
    first = rec.snapshot()
    assert rec.snapshot() is first  # a second session asking at the same moment

    rec.set_status(step=11, elapsed=1.1)  # a record of another process's run reads status.json: the same call
    moved = rec.snapshot()
    assert moved is not first and moved.step == 11

    rec.add_metrics([{"step": 12, "d_loss": 0.1}])
    assert rec.snapshot().metrics["step"].iloc[-1] == 12

    rec.add_grid(12, np.zeros((8, 8, 3), np.uint8))
    assert rec.snapshot().latest_grid_step == 12

    rec.note("a note")
    assert rec.snapshot().events[-1].endswith("a note")


def test_files_written_beside_the_record_reach_the_next_snapshot(tmp_path):
    """A checkpoint or a quality evaluation lands as a file (the trainer's saver, the evaluator's thread): the
    shared snapshot must not hide it."""
    rec = record(tmp_path)
    before = rec.snapshot()
    rf.checkpoint_path(rec.dir, 10).parent.mkdir(parents=True, exist_ok=True)
    rf.checkpoint_path(rec.dir, 10).write_bytes(b"x")
    assert rec.snapshot().checkpoints == [rf.checkpoint_path(rec.dir, 10).name]
    (rec.dir / rf.EVAL_FILE).write_text(json.dumps({"fid": 12.5, "step": 10}))
    after = rec.snapshot()
    assert after is not before and after.extra["eval"]["fid"] == 12.5


def test_two_sessions_at_the_same_step_get_the_same_drawings(tmp_path):
    rec = record(tmp_path)
    mine, theirs = rec.snapshot(), dataclasses.replace(rec.snapshot())  # equal content, another object
    figures = live.curve_figures(mine, 0.6)
    assert all(a is b for a, b in zip(figures, live.curve_figures(theirs, 0.6)))
    assert live.diagnosis(mine) is live.diagnosis(theirs)

    rec.add_metrics([{"step": 11, "d_loss": 0.2, "g_loss": 0.5}])
    newer = live.curve_figures(rec.snapshot(), 0.6)
    assert newer[0] is not figures[0]  # the next step is drawn anew
    assert live.curve_figures(mine, 0.3)[0] is not figures[0]  # so is another smoothing


def test_the_grid_is_sent_as_its_saved_png(tmp_path):
    rec = record(tmp_path)

    class Store:  # what live.grid_png uses of a RunStore
        root = rec.dir.parent

        def grid_png(self, run_id, step):
            return (rec.dir / "samples" / f"step_{step:08d}.png").read_bytes()

    png = live.grid_png(Store(), "r", 10)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and live.grid_png(Store(), "r", 10) is png
    assert live.grid_png(Store(), "r", None) is None


def test_a_shared_figure_draws_exactly_what_the_figure_draws(tmp_path):
    """st.plotly_chart serialises what to_dict returns; the shared figure's is made once but must be the same."""
    snap = record(tmp_path).snapshot()
    plain = charts.scores_figure(snap.metrics, "probability", 0.6)
    shared = charts.shared(plain)

    def sent(fig):
        return json.loads(pio.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False))

    assert sent(shared) == sent(plain)
    assert sent(shared) == sent(shared)  # a second session's copy, after the serialiser dropped uids from the first
    marked = charts.with_marker(shared, 5)
    assert [s["x0"] for s in sent(marked)["layout"]["shapes"] if s.get("name") == "timeline"] == [5]
    assert "timeline" not in [s.get("name") for s in sent(shared)["layout"].get("shapes", [])]


def test_the_teacher_refreshes_every_two_seconds_whatever_the_load():
    assert {refresh.interval_for(True, n) for n in (0, 1, 30, 100, 1000)} == {refresh.REFRESH_S}


def test_viewers_refresh_less_often_as_more_watch_but_within_the_limit():
    intervals = [refresh.interval_for(False, n) for n in range(0, 501)]
    assert intervals[0] == intervals[1] == refresh.REFRESH_S  # a few viewers: as before
    assert intervals == sorted(intervals)
    assert intervals[100] > refresh.REFRESH_S
    assert max(intervals) == refresh.MAX_REFRESH_S <= 3.5  # a new step at least every ~4 s, one rerun included
    assert all((i / refresh.BAND_S).is_integer() for i in intervals)  # whole bands: few re-asks


def test_watchers_count_the_viewers_seen_lately():
    w = refresh.Watchers()
    for session in ("a", "b", "c"):
        w.seen(session, teacher=False, now=0.0)
    w.seen("a", teacher=False, now=1.0)  # one session refreshing twice counts once
    w.seen("t", teacher=True, now=1.0)  # the teacher is no viewer
    assert w.viewers(now=2.0) == 3
    w.seen("a", teacher=False, now=refresh.SEEN_FOR_S + 1.0)
    assert w.viewers(now=refresh.SEEN_FOR_S + 1.5) == 1  # b and c have left


def test_a_session_drawn_while_a_class_watches_asks_for_the_longer_interval(monkeypatch):
    """The browser keeps the interval it was given when the page was drawn: the first viewers get 2 s, a session
    drawn while 200 watch gets the longest; refreshing keeps a session counted, leaving (no refresh) drops it."""
    monkeypatch.setattr(refresh, "st", SimpleNamespace(session_state={}))
    monkeypatch.setattr(refresh, "is_teacher", lambda: False)
    monkeypatch.setattr(refresh, "WATCHERS", refresh.Watchers())
    assert refresh.live_interval() == refresh.REFRESH_S
    for i in range(200):  # a lecture hall arrives
        refresh.WATCHERS.seen(f"viewer{i}", teacher=False)
    assert refresh.live_interval() == refresh.MAX_REFRESH_S
    refresh.still_watching()
    assert refresh.WATCHERS.viewers() == 201  # this session counted once, however often it refreshes
    monkeypatch.setattr(refresh, "is_teacher", lambda: True)
    assert refresh.live_interval() == refresh.REFRESH_S  # the teacher's page first


def priority_after(teacher: bool, classroom: bool, monkeypatch) -> int:
    """The priority a rerun thread has after yield_to_the_run (on a thread of its own, as Streamlit runs each rerun)."""
    import os
    import threading
    from ui import roles
    monkeypatch.setattr(roles, "classroom", lambda: classroom)
    seen = []

    def rerun():
        refresh.yield_to_the_run(teacher)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=rerun)
    t.start()
    t.join()
    return seen[0]


def test_a_classroom_viewers_rerun_yields_the_cores_to_the_teachers_run_and_page(monkeypatch):
    import os
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert priority_after(teacher=False, classroom=True, monkeypatch=monkeypatch) == max(base, refresh.VIEWER_NICE)
    assert priority_after(teacher=True, classroom=True, monkeypatch=monkeypatch) == base
    assert priority_after(teacher=False, classroom=False, monkeypatch=monkeypatch) == base  # one user: nobody waits
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the test's own thread is untouched


def test_a_fast_run_is_drawn_anew_at_most_once_a_second_for_everyone_but_at_once_when_its_status_changes():
    from ui.live import REDRAW_S, Frames
    frames = Frames()
    snap = lambda step, status="running": SimpleNamespace(run_dir="/r", run_id="a", step=step, status=status)
    first = snap(10)
    assert frames.frame(first, now=100.0) is first
    assert frames.frame(snap(20), now=100.0 + REDRAW_S / 2) is first  # a new row half a second later: same drawing
    paused = snap(20, "paused")
    assert frames.frame(paused, now=100.0 + REDRAW_S / 2) is paused  # Pause shows at once
    later = snap(30, "paused")
    assert frames.frame(later, now=100.0 + REDRAW_S / 2 + REDRAW_S) is later  # a second on: the newest
    other = SimpleNamespace(run_dir="/r", run_id="b", step=1, status="running")
    assert frames.frame(other, now=100.0 + REDRAW_S) is other  # each run has its own frame
    restarted = snap(5, "paused")
    assert frames.frame(restarted, now=100.0 + REDRAW_S / 2 + REDRAW_S) is restarted  # fewer steps: not an old frame
