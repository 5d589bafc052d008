"""Where the dashboard's runs train: by default in a `train --workers` process of their own (whose Python never
waits for the interpreter lock every page rerun holds), one worker in classroom mode (the lecture hall's pages keep
the server's core); GAN_STUDIO_WORKERS=thread keeps the old in-server thread."""
from __future__ import annotations

import json
import os
import time

import pytest
import streamlit as st
from conftest import gan_threads
from test_app import app, start_tiny_run, store

from gan_core.classroom import WORKERS_ENV, workers_setting


@pytest.mark.parametrize("raw, classroom, expected", [
    (None, False, ("auto", "")), (None, True, ("1", "")), ("thread", False, (None, "")), ("THREAD", True, (None, "")),
    ("auto", True, ("auto", "")), ("3", False, ("3", "")), (" 2 ", True, ("2", "")),
])
def test_the_workers_setting_reads_thread_auto_or_a_count(monkeypatch, raw, classroom, expected):
    if raw is None:
        monkeypatch.delenv(WORKERS_ENV, raising=False)
    else:
        monkeypatch.setenv(WORKERS_ENV, raw)
    assert workers_setting(classroom) == expected


@pytest.mark.parametrize("raw", ["0", "65", "-1", "two", "1.5", "thread;rm"])
def test_a_bad_workers_setting_falls_back_and_says_why(monkeypatch, raw):
    monkeypatch.setenv(WORKERS_ENV, raw)
    workers, note = workers_setting(classroom=False)
    assert workers == "auto" and WORKERS_ENV in note and "thread, auto or a whole number" in note


@pytest.fixture
def users_default(tmp_path, monkeypatch):
    """The dashboard as users start it: no GAN_STUDIO_WORKERS (conftest sets `thread` for every other test)."""
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    st.cache_resource.clear()
    yield
    from ui.state import get_store
    get_store().shutdown(timeout=60)
    st.cache_resource.clear()


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        store().wait(store().runs()[0]["run_id"], timeout=0.25)  # returns as the run's status file changes


def test_start_trains_in_a_process_of_its_own_that_monitor_pauses_resumes_and_stops(users_default):
    at = app()
    run_id = start_tiny_run(at, steps=1_000_000)
    status_file = store().run_dir(run_id) / "status.json"
    assert store().workers == "auto" and not gan_threads()
    assert json.loads(status_file.read_text())["pid"] != os.getpid()  # trained by another process
    wait_for(lambda: store().snapshot(run_id).status == "running" and store().snapshot(run_id).step >= 4, "training")
    at.run()
    at.button(key="btn_pause").click().run()
    wait_for(lambda: store().snapshot(run_id).status == "paused", "the pause to reach the run's process")
    paused_at = store().snapshot(run_id).step
    at.run()
    at.button(key="btn_unpause").click().run()
    wait_for(lambda: store().snapshot(run_id).step > paused_at, "training again")
    at.run()
    at.button(key="btn_stop").click().run()
    assert store().wait(run_id, timeout=120) == "stopped"
    at.run()
    assert any(":gray-badge[stopped]" in m.value for m in at.markdown)


def test_classroom_mode_trains_the_teachers_run_on_one_worker(users_default, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_TEACHER_PASSWORD", "sesame")
    app()
    assert store().workers == "1"


def test_a_run_that_ends_while_its_status_is_read_is_not_called_interrupted(tmp_path, monkeypatch):
    """Monitor reads a foreign run's status, then asks whether its writer still lives: a run stopped in between (its
    last word written, its lock released) was taken for a crash and its status file rewritten "interrupted"."""
    from gan_core.runs import files as rf
    from gan_core.runs.record import RunRecord
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    status = {"status": "running", "step": 40, "updated_at": 1.0}
    (run_dir / "status.json").write_text(json.dumps(status))

    def the_writer_ends_now(folder):
        rf.atomic_write(folder / "status.json", json.dumps({**status, "status": "stopped", "updated_at": 2.0}), folder)
        return False

    monkeypatch.setattr(rf, "writer_alive", the_writer_ends_now)
    record = RunRecord("run", run_dir)
    record.refresh(details=False)
    assert record.status["status"] == "stopped"
    assert json.loads((run_dir / "status.json").read_text())["status"] == "stopped"
