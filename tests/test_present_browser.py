"""The presenter view on a projector (1280×720) in real Chromium: the grid, the losses and D(real)/D(fake) on one
screen without scrolling, tick labels of at least 16 px, a tab titled for presenting; Compare's presenter view
shows step counts whole.

Skips with the reason when Chromium or Playwright is missing, unless GAN_STUDIO_REQUIRE_BROWSER=1 (CI)."""
from __future__ import annotations

import os

import pytest

from browser import chromium, streamlit_server
from conftest import TINY
from gan_core import RunStore, build_config
from test_e2e_browser import REQUIRED, TIMEOUT_MS, missing, no_tracebacks

pytestmark = pytest.mark.skipif(bool(missing) and not REQUIRED, reason=f"browser tests skipped: {missing}")
PROJECTOR = {"width": 1280, "height": 720}
SHOTS = os.environ.get("GAN_STUDIO_SCREENSHOTS")  # a folder to keep the screenshots in (for a person to look at)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two finished runs (one cut short by its clock, so its step count reads "N / 1000"), the server, Chromium."""
    if missing:
        pytest.fail(f"GAN_STUDIO_REQUIRE_BROWSER=1 but the browser tests cannot run: {missing}")
    tmp = tmp_path_factory.mktemp("present")
    runs = RunStore(tmp / "runs")
    whole = runs.start(build_config(**{**TINY, "arch": "mlp", "steps": 60, "log_every": 2, "sample_every": 20,
                                       "name": "lesson-run"}).validate())
    cut = runs.start(build_config(**{**TINY, "arch": "mlp", "steps": 1000, "max_seconds": 1.0, "log_every": 2,
                                     "sample_every": 20, "name": "cut-short"}).validate())
    assert runs.wait(whole, timeout=120) == "finished" and runs.wait(cut, timeout=120) == "finished"
    runs.shutdown()
    with streamlit_server(tmp / "runs", tmp / "streamlit.log") as (url, _), chromium() as browser:
        yield url, browser, whole, cut


def projector_page(served, path: str):
    url, browser, *_ = served
    page = browser.new_page(viewport=PROJECTOR)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/{path}")
    return page


def inside_viewport(page, locator) -> None:
    box = locator.bounding_box()
    assert box is not None, "not drawn"
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= PROJECTOR["width"] + 1 and box["y"] + box["height"] <= PROJECTOR["height"] + 1, box


def test_one_run_fits_a_projector_screen_with_readable_ticks(served):
    _, _, whole, _ = served
    page = projector_page(served, f"monitor?run={whole}&present=1")
    grid = page.locator('[data-testid="stImage"] img').first
    grid.wait_for()
    losses = page.locator('[data-testid="stPlotlyChart"]', has_text="Losses")
    scores = page.locator('[data-testid="stPlotlyChart"]', has_text="D(real) and D(fake)")
    losses.locator(".ytick text").first.wait_for()
    scores.locator(".ytick text").first.wait_for()
    page.wait_for_timeout(500)  # images settle to their final size after the layout pass (not a sync with a thread)
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "present_run.png"))
    assert page.evaluate("window.scrollY") == 0
    for element in (grid, losses, scores):
        inside_viewport(page, element)
    sizes = page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid="stPlotlyChart"] .xtick text, [data-testid="stPlotlyChart"] .ytick text')]
        .map(t => parseFloat(getComputedStyle(t).fontSize))""")
    assert sizes and min(sizes) >= 16, sizes
    assert "Presenting" in page.title() and "lesson-run" in page.title()
    assert page.get_by_role("heading", name="Monitor").count() == 0
    assert page.get_by_role("heading", name="lesson-run — finished").count() == 1
    no_tracebacks(page)


def test_compare_presenter_shows_whole_step_counts(served):
    _, _, whole, cut = served
    page = projector_page(served, f"compare?runs={cut},{whole}&present=1")
    page.locator('[data-testid="stImage"] img').nth(1).wait_for()
    page.locator('[data-testid="stPlotlyChart"] .ytick text').first.wait_for()
    for i in range(2):  # each run's grid and losses on the one screen
        inside_viewport(page, page.locator('[data-testid="stImage"] img').nth(i))
        inside_viewport(page, page.locator('[data-testid="stPlotlyChart"]', has_text="Losses").nth(i))
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "present_compare.png"))
    steps = page.get_by_text("/ 1000")
    steps.first.wait_for()
    for i in range(steps.count()):
        text = steps.nth(i)
        assert text.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), text.inner_text()  # not cut to "360 / …"
        assert "…" not in text.inner_text()
    assert "Presenting" in page.title()
    no_tracebacks(page)
