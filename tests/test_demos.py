"""The Learn page's demos, trained for real (step-bounded, so the traces are the same on every machine): each is
diagnosed as its lesson says, the defaults as healthy, and the words are the ones Monitor and the CLI show."""
from __future__ import annotations

import pytest

from gan_core.insight.health import diagnose_snapshot
from gan_core.presets import PRESETS, build_config

# preset → (steps that show it, the findings its lesson names). Steps are a fraction of what a 60-s run reaches
# even on a busy CPU: the phenomena appear early on purpose.
DEMOS = {
    "demo-minimax": (120, {"vanishing_gradient"}),
    "demo-d-too-strong": (100, {"d_wins"}),
    "demo-lr-too-high": (150, {"diverged", "oscillating"}),
    "demo-mode-collapse": (300, {"mode_collapse"}),
}
HEALTHY = {"fast-mnist": 60, "2d-default": 300}


def run(store, preset: str, steps: int, **overrides):
    config = build_config(preset, steps=steps, eval_every=0, device="cpu", threads=1, **overrides).validate()
    run_id = store.start(config)
    assert store.wait(run_id, timeout=600) in ("finished", "diverged")
    return store.snapshot(run_id)


@pytest.mark.parametrize("preset", list(DEMOS))
def test_each_failure_demo_is_diagnosed_as_its_lesson_says(store, preset):
    steps, expected = DEMOS[preset]
    finding = diagnose_snapshot(run(store, preset, steps))[0]
    assert finding.code in expected, finding.text
    assert finding.step and finding.step <= steps
    assert finding.evidence and finding.fix_text


def test_the_minimax_demo_names_the_vanishing_gradient_with_its_numbers(store):
    finding = diagnose_snapshot(run(store, "demo-minimax", DEMOS["demo-minimax"][0]))[0]
    assert finding.evidence["d_fake"] < 0.05
    assert finding.evidence["grad_norm_g_share_of_peak"] < 0.05
    assert finding.fix_settings == {"loss": "bce"}


@pytest.mark.parametrize("preset", list(HEALTHY))
def test_the_defaults_are_healthy(store, preset):
    finding = diagnose_snapshot(run(store, preset, HEALTHY[preset], log_every=5))[0]
    assert finding.code == "healthy", finding.text


def test_2d_runs_log_the_mode_metrics_at_every_grid(store):
    snap = run(store, "2d-default", 50, sample_every=25, log_every=5)
    measured = snap.metrics.dropna(subset=["modes_covered"])
    assert list(measured["step"]) == [25, 50]
    assert measured["hq_percent"].between(0, 100).all() and (measured["diversity"] > 0).all()


def test_every_demo_fits_a_minute_and_logs_early():
    for preset in DEMOS:
        config = build_config(preset)
        assert 0 < config.max_seconds <= 60 and config.log_every <= 5, preset
        assert "Monitor" in PRESETS[preset]["description"]  # each says what to look at
