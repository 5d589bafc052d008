"""Issue 18 in real Chromium: the script download runs; (later parts add their views here).

Skips with the reason when Chromium or Playwright is missing, unless GAN_STUDIO_REQUIRE_BROWSER=1 (CI)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from browser import chromium, streamlit_server
from conftest import TINY
from test_e2e_browser import REQUIRED, TIMEOUT_MS, expect, missing, no_tracebacks
from test_export import mnist_layout

from gan_core import RunStore, build_config
from gan_core.engine.metrics import get_evaluator

pytestmark = pytest.mark.skipif(bool(missing) and not REQUIRED, reason=f"browser tests skipped: {missing}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One finished conditional run (trained here, like a CLI run), then the server and a browser."""
    if missing:
        pytest.fail(f"GAN_STUDIO_REQUIRE_BROWSER=1 but the browser tests cannot run: {missing}")
    tmp = tmp_path_factory.mktemp("insight")
    get_evaluator("mnist-embedded")  # into the session's cache, which the server reads: no training behind a click
    runs = RunStore(tmp / "runs")
    run_id = runs.start(build_config(**{**TINY, "steps": 8, "sample_every": 2, "checkpoint_every": 4, "grid_size": 10,
                                        "arch": "mlp", "conditional": True, "name": "cgan"}).validate())
    assert runs.wait(run_id, timeout=120) == "finished"
    with streamlit_server(tmp / "runs", tmp / "streamlit.log") as (url, _), chromium() as browser:
        yield url, tmp, run_id, browser


def open_page(served, path: str, heading: str):
    url, _, run_id, browser = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/{path.format(run_id=run_id)}")
    page.get_by_role("heading", name=heading).wait_for()
    return page


def open_monitor(served):
    page = open_page(served, "monitor?run={run_id}", "Monitor")
    page.locator('[data-testid="stImage"] img').first.wait_for()
    return page


def test_downloaded_script_runs(served):
    _, tmp, _, _ = served
    page = open_monitor(served)
    with page.expect_download() as download:
        page.get_by_role("button", name="Script (.py)").click()
    script = tmp / "my_gan.py"
    download.value.save_as(script)
    no_tracebacks(page)
    run = subprocess.run([sys.executable, str(script), "--data-root", str(mnist_layout(tmp / "data")), "--steps", "2",
                          "--out", str(tmp / "grid.png")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "[2/2] Loss_D:" in run.stdout and (tmp / "grid.png").stat().st_size > 100


def test_nearest_neighbours_render(served):
    page = open_monitor(served)
    page.get_by_role("button", name="Check for copying").click()
    page.locator('[data-testid="stMetric"]', has_text="Memorisation score").wait_for()
    page.get_by_text("then its nearest training images").wait_for()
    assert page.locator('[data-testid="stImage"] img').count() >= 2  # the grid and the neighbours
    no_tracebacks(page)


def test_direction_slider_changes_the_image(served):
    page = open_page(served, "latent", "Meaningful directions")
    moved = page.locator('[data-testid="stImage"]', has_text="z moved along the directions").locator("img")
    before = moved.get_attribute("src")
    thumb = page.get_by_role("slider", name=re.compile(r"^Direction 1"))
    thumb.focus()
    for _ in range(10):
        thumb.press("ArrowRight")
    page.wait_for_function("""before => { const el = [...document.querySelectorAll('[data-testid="stImage"]')]
                                .find(e => e.innerText.includes('z moved along the directions'));
                              return el && el.querySelector('img').src !== before; }""", arg=before)
    assert page.get_by_text("class 3 → class 8").count() == 1  # the class walk of this conditional run
    no_tracebacks(page)


def test_scrub_moves_grid_and_markers_and_live_snaps_back(served):
    page = open_monitor(served)
    caption = page.locator('[data-testid="stImage"]', has_text="Fixed noise at step")
    expect(caption).to_contain_text("Fixed noise at step 8")
    markers = page.locator('[data-testid="stPlotlyChart"] .shapelayer path')
    before = markers.count()
    thumb = page.get_by_role("slider", name="Timeline: step")
    thumb.focus()
    for _ in range(5):
        thumb.press("ArrowLeft")  # step 8 → 3: the nearest saved grid is step 2
    expect(caption).to_contain_text("Fixed noise at step 2 (nearest saved grid to step 3)")
    page.wait_for_function("n => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .shapelayer path').length >= n + 3",
                           arg=before)
    page.get_by_role("button", name="Live").click()
    expect(caption).to_contain_text("Fixed noise at step 8")
    no_tracebacks(page)


def test_fork_creates_a_linked_child_and_the_reference_overlay_shows(served):
    page = open_monitor(served)
    page.get_by_text("Healthy reference", exact=True).click()
    page.locator('[data-testid="stPlotlyChart"]', has_text="healthy G loss").first.wait_for()  # the band's legend
    page.get_by_role("button", name=re.compile(r"^Fork from step 8")).click()
    page.get_by_role("heading", name="Train a GAN").wait_for()
    page.get_by_text(re.compile(r"of run .* from step 8 \(its checkpoint")).first.wait_for()
    page.get_by_text("Length, device and speed").click()  # the steps field's group starts folded
    page.get_by_label("steps", exact=True).fill("12")
    page.get_by_label("steps", exact=True).press("Enter")
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("heading", name="Monitor").wait_for()
    page.get_by_text(re.compile(r"Forked from .* at step 8")).first.wait_for()
    page.get_by_text("finished", exact=True).first.wait_for()  # the child's 4 steps: then no live refresh races the click
    page.get_by_role("button", name="Compare with its parent").click()
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.get_by_text(re.compile(r"is a fork of .* at step 8")).first.wait_for()
    no_tracebacks(page)
