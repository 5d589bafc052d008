"""A shared link opened first on a fresh server (a class clicking the teacher's /monitor?run=… before anyone opened
the front page): Streamlit ran the page alone, in its pages-folder mode, without app.py (no sidebar of runs, no
teacher login, a narrow layout, Monitor's timeline at step 0). It must open through app.py like any visit."""
from __future__ import annotations

import pytest
from browser import streamlit_server
from test_classroom_browser import badge, new_page, pytestmark  # noqa: F401
from test_e2e_browser import browser, no_tracebacks  # noqa: F401  (browser is a fixture)

from gan_core import RunStore


@pytest.fixture(scope="module")
def server_with_a_run(tmp_path_factory, tiny_config):
    tmp = tmp_path_factory.mktemp("deeplink")
    store = RunStore(tmp / "runs")
    run_id = store.start(tiny_config(steps=5))
    assert store.wait(run_id, timeout=120) == "finished"
    with streamlit_server(tmp / "runs", tmp / "streamlit.log") as (url, pid):  # nobody has opened "/" yet
        yield url, run_id


@pytest.fixture(scope="module")
def tiny_config():
    from conftest import TINY

    from gan_core.presets import build_config
    return lambda **overrides: build_config(**{**TINY, "grid_size": 10, **overrides}).validate()


def test_a_shared_monitor_link_opened_first_runs_through_the_app(server_with_a_run, browser):
    url, run_id = server_with_a_run
    page = new_page(browser)
    page.goto(f"{url}/monitor?run={run_id}")
    page.get_by_role("heading", name="Monitor").wait_for()
    badge(page, "finished").wait_for()
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Device:").wait_for()  # app.py's sidebar, not the folder's list of file names
    assert "Training now" in sidebar.inner_text() and "Latent explorer" in sidebar.inner_text()  # app.py's titles
    assert page.url.split("?")[0].endswith("/monitor") and f"run={run_id}" in page.url
    no_tracebacks(page)
    page.close()
