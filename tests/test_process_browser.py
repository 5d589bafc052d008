"""Start then watch, in Chromium, as users get it: the run trains in a process of its own (GAN_STUDIO_WORKERS, not
the tests' in-server thread), Monitor follows it live and its Pause, Resume and Stop reach that process."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from browser import streamlit_server
from test_classroom_browser import SHARED, badge, new_page, pytestmark, start_from_train, wait_step_above  # noqa: F401
from test_e2e_browser import browser, no_tracebacks  # noqa: F401  (browser is a fixture)
from test_e2e_browser import step_value as step_of


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("process")
    with streamlit_server(tmp / "runs", tmp / "streamlit.log", env={"GAN_STUDIO_WORKERS": "1"}) as (url, pid):
        yield url, tmp, pid


def test_start_then_watch_a_run_trained_in_its_own_process(server, browser):
    url, tmp, server_pid = server
    page = new_page(browser)
    page.goto(f"{url}/?{urlencode(SHARED)}")
    page.get_by_role("heading", name="Train a GAN").wait_for()
    run_id = start_from_train(page)
    assert json.loads((tmp / "runs" / run_id / "status.json").read_text())["pid"] != server_pid
    wait_step_above(page, 0)
    wait_step_above(page, step_of(page))  # live: the step keeps rising on its own
    assert "step=" not in page.url  # following the newest step, not pinned to one
    page.get_by_role("button", name="Pause").click()
    badge(page, "paused").wait_for()
    page.get_by_role("button", name="Resume").click()
    badge(page, "running").wait_for()
    wait_step_above(page, step_of(page))
    page.get_by_role("button", name="Stop").click()
    badge(page, "stopped").wait_for()
    no_tracebacks(page)
    page.close()
