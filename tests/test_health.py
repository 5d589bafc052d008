"""The training-health diagnosis: each rule fires on a trace made to show its problem, and stays silent on
healthy traces (probability and critic scores, several noise seeds)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gan_core.engine.point_metrics import point_modes
from gan_core.insight.health import check_d_wins, check_diverged, check_mode_collapse, check_oscillating, training_rows
from gan_core.insight.diagnosis import diagnose, diagnose_snapshot
from gan_core.presets import PRESETS, build_config
from gan_core.runs.files import METRIC_COLUMNS

ROWS, EVERY, EVAL_EVERY = 200, 10, 25  # 200 logged rows, one per 10 steps; an evaluation every 25 rows


def trace(seed: int = 0, critic: bool = False, **columns) -> pd.DataFrame:
    """A healthy run's metric trace; keyword arguments replace whole columns (arrays of ROWS values)."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, ROWS + 1) * EVERY
    noise = lambda scale: scale * rng.standard_normal(ROWS)  # noqa: E731
    settle = 1 - np.exp(-step / 400)
    if critic:  # a WGAN-GP critic: scores hover around a steady gap
        d_real, d_fake = 1.0 + noise(0.15), -1.0 + noise(0.15)
        d_loss, g_loss = -2.0 + noise(0.2), 1.0 + noise(0.15)
    else:
        d_real, d_fake = 0.62 + noise(0.03), 0.38 + noise(0.03)
        d_loss, g_loss = 1.25 - 0.1 * settle + noise(0.05), 0.95 + 0.1 * settle + noise(0.05)
    df = pd.DataFrame({"step": step, "wall_time": step / 30.0, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real,
                       "d_fake": d_fake, "grad_norm_d": 1.0 + noise(0.1), "grad_norm_g": 0.5 + noise(0.05),
                       "lr_d": 2e-4, "lr_g": 2e-4, "images_per_s": 2000.0})
    evals = np.arange(ROWS) % EVAL_EVERY == EVAL_EVERY - 1
    df["fid"] = np.where(evals, 150 * np.exp(-step / 600) + 5 + noise(1.0), np.nan)
    df["modes_covered"] = np.where(evals, 10.0, np.nan)
    df["confidence"] = np.where(evals, 0.7 + 0.2 * settle, np.nan)
    df["label_accuracy"] = np.nan
    df["diversity"] = np.where(evals, 0.5 + 0.45 * settle + noise(0.03), np.nan)
    for name, values in columns.items():
        df[name] = values if name not in ("fid", "modes_covered", "diversity") else np.where(evals, values, np.nan)
    return df.reindex(columns=METRIC_COLUMNS)  # columns a trace does not set (2-D, restorer) stay empty


NOISE = dict(fid=np.full(ROWS, 1300.0), modes_covered=np.full(ROWS, 2.0), confidence=np.full(ROWS, 0.45))  # noise


def ramp(start: float, end: float, begin_row: int = ROWS // 2) -> np.ndarray:
    """Flat at `start`, then a straight line to `end` over the last rows."""
    out = np.full(ROWS, float(start))
    out[begin_row:] = np.linspace(start, end, ROWS - begin_row)
    return out


def codes(diagnoses) -> list[str]:
    return [d.code for d in diagnoses]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("critic", [False, True])
def test_healthy_traces_trigger_no_rule(seed, critic):
    df = trace(seed, critic)
    kind = "critic" if critic else "probability"
    train = training_rows(df)
    assert check_diverged(train, "running", None) is None
    assert check_d_wins(train, kind, None) is None
    assert check_mode_collapse(df, None, 10, None) is None
    assert check_oscillating(train, None) is None
    result = diagnose(df, kind, "running")
    assert codes(result) == ["healthy"]
    assert result[0].level == "ok"


def test_diverged_fires_on_nan_and_names_the_step():
    d_loss = trace()["d_loss"].to_numpy().copy()
    d_loss[-1] = np.nan  # what metrics.csv holds after the trainer logged a NaN loss
    result = diagnose(trace(d_loss=d_loss), "probability", "running")
    assert codes(result) == ["diverged"]
    assert f"step {ROWS * EVERY}" in result[0].explanation
    assert result[0].level == "error"


def test_diverged_fires_on_infinite_gradients_and_on_the_status():
    grad = trace()["grad_norm_d"].to_numpy().copy()
    grad[150] = np.inf
    assert codes(diagnose(trace(grad_norm_d=grad))) == ["diverged"]
    assert codes(diagnose(trace(), status="diverged")) == ["diverged"]


def test_d_winning_fires_when_d_is_sure_and_g_loss_rises():
    df = trace(d_real=ramp(0.62, 0.99), d_fake=ramp(0.38, 0.01), g_loss=ramp(0.95, 5.0), **NOISE)
    assert "d_wins" in codes(diagnose(df, "probability"))


def test_d_wins_is_judged_on_levels_not_on_a_rising_g_loss():
    """demo-d-too-strong's trace: D(real) = 1, D(fake) ≈ 0.0005 and G's loss high but flat (not rising) for many
    rows. The old rule waited for G's loss to rise and called this healthy."""
    df = trace(d_real=np.full(ROWS, 0.9999), d_fake=np.full(ROWS, 5e-4), g_loss=np.full(ROWS, 60.0),
               d_loss=np.full(ROWS, 1e-3), **NOISE)
    result = diagnose(df, "probability")
    assert codes(result)[0] == "d_wins"
    assert result[0].step == ROWS * EVERY
    assert result[0].evidence["d_real"] >= 0.99 and result[0].evidence["d_fake"] <= 1e-3
    assert result[0].evidence["g_loss"] == pytest.approx(60.0)


def test_d_winning_for_critic_scores_uses_the_growing_gap():
    df = trace(critic=True, d_real=ramp(1.0, 30.0), d_fake=ramp(-1.0, -30.0), g_loss=ramp(1.0, 30.0), **NOISE)
    result = diagnose(df, "critic")
    assert "d_wins" in codes(result)
    # the same critic numbers read as probabilities would be nonsense: the rule must not rely on 0..1 there
    assert check_d_wins(training_rows(trace(critic=True)), "critic", None) is None


def test_mode_collapse_fires_when_classes_covered_drop():
    modes = np.full(ROWS, 10.0)
    modes[-EVAL_EVERY * 3:] = 4.0  # three evaluations in a row: one or two could be noise
    result = diagnose(trace(modes_covered=modes), config={"conditional": False, "lr_g": 2e-4})
    assert "mode_collapse" in codes(result)
    collapse = next(d for d in result if d.code == "mode_collapse")
    assert "10/10" in collapse.explanation and "4/10" in collapse.explanation


def test_mode_collapse_fires_when_diversity_drops():
    diversity = ramp(0.9, 0.1, begin_row=ROWS - 4 * EVAL_EVERY)
    assert "mode_collapse" in codes(diagnose(trace(diversity=diversity)))


def test_oscillation_fires_on_periodic_swings_of_the_losses():
    step = np.arange(1, ROWS + 1) * EVERY
    swing = 0.5 * np.sin(2 * np.pi * step / 300)
    df = trace(d_loss=trace()["d_loss"] + swing, g_loss=trace()["g_loss"] - swing)
    result = diagnose(df)
    assert "oscillating" in codes(result)
    osc = next(d for d in result if d.code == "oscillating")
    assert "300 steps" in osc.explanation


def test_oscillation_ignores_a_loss_that_just_settles():
    settling = 2.0 * np.exp(-np.arange(ROWS) / 30.0) + 1.0
    assert check_oscillating(training_rows(trace(d_loss=settling, g_loss=settling)), None) is None


def test_vanishing_gradient_needs_d_winning_and_a_collapsed_g_gradient():
    grad = np.full(ROWS, 0.8)
    grad[ROWS // 2:] = 0.003
    sure = dict(d_real=np.full(ROWS, 0.999), d_fake=np.full(ROWS, 1e-3), g_loss=np.full(ROWS, -1e-3))
    result = diagnose(trace(grad_norm_g=grad, **sure), "probability", config={"loss": "minimax"})
    assert codes(result)[0] == "vanishing_gradient"
    assert result[0].evidence["grad_norm_g"] == pytest.approx(0.003)
    assert result[0].fix_settings == {"loss": "bce"}
    assert codes(diagnose(trace(**sure, **NOISE), "probability"))[0] == "d_wins"  # D sure, G still gets its gradient
    assert "vanishing_gradient" not in codes(diagnose(trace(grad_norm_g=grad), "probability"))  # D not winning


def test_mode_collapse_on_a_2d_mixture_needs_few_modes_and_a_narrow_cloud():
    collapsed = trace(modes_covered=np.full(ROWS, 1.0), diversity=np.full(ROWS, 0.02))
    result = diagnose(collapsed, config={"arch": "mlp2d", "d_hidden": [16, 16]}, n_modes=8)
    assert "mode_collapse" in codes(result)
    found = next(d for d in result if d.code == "mode_collapse")
    assert found.evidence["modes_covered"] == 1 and found.evidence["n_modes"] == 8
    spread_out = trace(modes_covered=np.full(ROWS, 1.0), diversity=np.full(ROWS, 0.8))  # still learning, not collapsed
    assert "mode_collapse" not in codes(diagnose(spread_out, n_modes=8))
    covered = trace(modes_covered=np.full(ROWS, 8.0), diversity=np.full(ROWS, 0.9))
    assert codes(diagnose(covered, n_modes=8)) == ["healthy"]


def test_point_modes_counts_the_modes_a_cloud_reaches():
    from gan_core.data import load_points
    ring = load_points("ring-8")
    import torch
    everywhere = ring.sample(800, torch.Generator().manual_seed(0)).numpy()
    one_blob = np.repeat(ring.centres[:1].numpy(), 800, axis=0)
    assert point_modes(everywhere, ring)["modes_covered"] == 8
    assert point_modes(everywhere, ring)["diversity"] == pytest.approx(1.0, abs=0.15)
    assert point_modes(one_blob, ring)["modes_covered"] == 1
    assert point_modes(one_blob, ring)["diversity"] < 0.01


def test_losses_that_exploded_and_then_calmed_down_are_still_diverged():
    """demo-lr-too-high over a full minute: D's loss in the hundreds for a while, then D wins and it sits near 1.5.
    The run diverged; it did not turn into a vanishing gradient."""
    d_loss = trace()["d_loss"].to_numpy().copy()
    d_loss[20:60] = 200.0
    grad = np.full(ROWS, 30.0)
    grad[20:60] = 1000.0
    result = diagnose(trace(d_loss=d_loss, grad_norm_g=grad, d_real=np.full(ROWS, 0.95), d_fake=np.full(ROWS, 0.05)))
    assert codes(result) == ["diverged"]
    assert result[0].evidence["first_step"] == 21 * EVERY and result[0].evidence["d_loss_max"] == 200.0
    assert "From step 210 on" in result[0].explanation


def test_too_few_rows_is_too_early_not_healthy():
    assert codes(diagnose(trace().head(5))) == ["too_early"]
    assert codes(diagnose(pd.DataFrame(columns=METRIC_COLUMNS))) == ["too_early"]


def test_every_fix_names_a_real_preset_or_valid_settings():
    cfg = build_config("fast-mnist")
    step = np.arange(1, ROWS + 1) * EVERY
    nan_loss = trace()["d_loss"].to_numpy().copy()
    nan_loss[-1] = np.nan
    modes = np.full(ROWS, 10.0)
    modes[-60:] = 3.0
    traces = [trace(d_loss=nan_loss), trace(d_real=ramp(0.6, 0.99), d_fake=ramp(0.4, 0.01), g_loss=ramp(1, 5), **NOISE),
              trace(modes_covered=modes), trace(d_loss=1.2 + 0.5 * np.sin(2 * np.pi * step / 300))]
    seen = set()
    for df in traces:
        for d in diagnose(df, "probability", config=cfg):
            seen.add(d.code)
            assert d.fix_text
            assert d.fix_preset is None or d.fix_preset in PRESETS
            assert d.fix_preset or d.fix_settings or d.code == "not_learning"  # that one points at a known recipe
            cfg.replace(**d.fix_settings).validate()  # every suggested value is one RunConfig accepts
    assert {"diverged", "d_wins", "mode_collapse", "oscillating"} <= seen


def test_the_cli_prints_one_json_line_with_the_finding_its_evidence_and_step(store, tiny_config, capsys):
    from gan_core.cli import main
    run_id = store.start(tiny_config(steps=30, log_every=2))
    assert store.wait(run_id, timeout=120) == "finished"
    assert main(["diagnose", str(store.run_dir(run_id))]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    assert set(result) == {"finding", "text", "step", "evidence", "fix"}
    expected = diagnose_snapshot(store.snapshot(run_id))[0]
    assert (result["finding"], result["text"], result["step"]) == (expected.code, expected.text, expected.step)
    assert result["fix"] == expected.fix
    assert main(["diagnose", str(store.root / "no-such-run")]) == 2


def test_diagnose_snapshot_reports_a_real_divergence(store, tiny_config):
    """End to end: a run whose D weights turn NaN is diagnosed as diverged from its snapshot alone."""
    def poison(trainer):
        if trainer.step == 3:
            for p in trainer.gan.D.parameters():
                p.data.fill_(float("nan"))

    run_id = store.start(tiny_config(steps=12), hooks=[poison])
    assert store.wait(run_id, timeout=120) == "diverged"
    result = diagnose_snapshot(store.snapshot(run_id))
    assert codes(result) == ["diverged"]
    assert result[0].fix_settings["lr_d"] == pytest.approx(tiny_config().lr_d / 2)


# ---------------------------------------------------------------------- verdicts grounded in the samples (issue 24)
IMAGE_RUN = {"dataset": "mnist-embedded", "task": "generate", "eval_every": 200, "preset": ""}


def test_balanced_losses_over_noise_are_never_healthy():
    """Issue 24.1: D too strong's fix run had balanced-looking losses, noise on the grid, and was called Healthy."""
    noise = diagnose(trace(**NOISE), "probability", config=IMAGE_RUN)
    assert codes(noise) == ["not_learning"] and noise[0].level == "warning"
    assert noise[0].title.startswith("Not learning yet: the samples are still noise")
    assert "grid" in noise[0].explanation and noise[0].evidence["fid"] == 1300.0
    falling = diagnose(trace(fid=np.linspace(1400, 400, ROWS), modes_covered=np.full(ROWS, 9.0)), config=IMAGE_RUN)
    assert codes(falling) == ["learning"] and falling[0].level == "info"  # not digits yet, but on its way
    reference = lambda step: (900.0, 1000.0, 1100.0)  # noqa: E731  a healthy run of the preset still at noise here
    assert codes(diagnose(trace(**NOISE), config=IMAGE_RUN, reference_fid=reference)) == ["learning"]
    far = diagnose(trace(**NOISE), config=IMAGE_RUN, reference_fid=lambda step: (20.0, 30.0, 40.0))
    assert codes(far) == ["not_learning"] and "30" in far[0].explanation


def test_without_a_measurement_of_the_samples_an_image_run_is_not_called_healthy():
    no_quality = trace(fid=np.full(ROWS, np.nan), modes_covered=np.full(ROWS, np.nan))
    off = diagnose(no_quality, config={**IMAGE_RUN, "eval_every": 0}, measured=False)
    assert codes(off) == ["unmeasured"] and off[0].level == "info" and "eval_every" in off[0].explanation
    waiting = diagnose(no_quality, config=IMAGE_RUN, measured=True)
    assert codes(waiting) == ["too_early"] and "200 steps" in waiting[0].explanation
    assert codes(diagnose(trace(), config=IMAGE_RUN, measured=True)) == ["healthy"]


def test_a_confident_d_while_the_samples_improve_is_no_alarm():
    """Issue 24.3: the tutorial DCGAN showed "D is winning" from step 220 while its samples were getting better."""
    sure = dict(d_real=np.full(ROWS, 0.95), d_fake=np.full(ROWS, 0.05), g_loss=np.full(ROWS, 3.5))
    improving = diagnose(trace(**sure, fid=np.linspace(1300, 600, ROWS), modes_covered=np.full(ROWS, 6.0)))
    assert "d_wins" not in codes(improving) and codes(improving) == ["learning"]
    assert codes(diagnose(trace(**sure, **NOISE)))[0] == "d_wins"  # the same D over samples that stay noise


def test_a_critic_gap_flat_within_its_noise_is_not_growing():
    """Issue 24.3: WGAN-GP ended on "the critic's gap keeps growing (now 5.12 at step 3000)" while it was 4.96 at
    step 2160: flat. The old 40-row window read the wiggle as a trend."""
    rng = np.random.default_rng(3)
    gap = 5.0 + 0.05 * rng.standard_normal(ROWS)
    gap[-40:] += np.linspace(0, 0.16, 40)
    df = trace(critic=True, d_real=gap / 2, d_fake=-gap / 2, g_loss=1.0 + np.linspace(0, 0.3, ROWS), **NOISE)
    assert "d_wins" not in codes(diagnose(df, "critic"))


def test_a_class_count_that_dips_once_does_not_flip_the_verdict():
    """Issue 24.3: LSGAN flapped Healthy → Mode collapse → Healthy on single evaluations."""
    for dip in (1, 2):
        modes = np.full(ROWS, 10.0)
        modes[-EVAL_EVERY * dip:] = 3.0  # the last `dip` evaluations
        assert "mode_collapse" not in codes(diagnose(trace(modes_covered=modes))), dip
    collapsed = np.full(ROWS, 10.0)
    collapsed[-EVAL_EVERY * 5:] = 3.0
    recovered_once = collapsed.copy()
    recovered_once[-EVAL_EVERY:] = 10.0  # one good evaluation does not end a collapse either
    assert "mode_collapse" in codes(diagnose(trace(modes_covered=recovered_once)))


def test_evidence_is_read_at_the_step_it_claims():
    """Issue 24.5: "Evidence (step 50)" quoted D's loss of around step 500."""
    d_loss = trace()["d_loss"].to_numpy().copy()
    d_loss[5:15] = 30.0
    d_loss[50:60] = 400.0
    df = trace(d_loss=d_loss)
    found = diagnose(df)[0]
    assert found.code == "diverged" and found.evidence["first_step"] <= 15 * EVERY
    rows = df[df["step"] <= found.step].tail(10)
    assert found.evidence["d_loss"] == pytest.approx(rows["d_loss"].mean(), rel=1e-2)
    assert found.step == 60 * EVERY


def test_verdict_numbers_are_readable():
    """Issue 24.6: "2.2e-06% of its peak 2.1", "D(fake) ≈ 2.1e-09", "only 0 of the 8 modes"."""
    grad = np.full(ROWS, 2.1)
    grad[ROWS // 2:] = 4.6e-8
    sure = dict(d_real=np.full(ROWS, 1.0), d_fake=np.full(ROWS, 2.1e-9), g_loss=np.full(ROWS, -1e-9))
    texts = [d.explanation for d in diagnose(trace(grad_norm_g=grad, **sure), config={"loss": "minimax"})]
    texts += [d.explanation for d in diagnose(trace(modes_covered=np.zeros(ROWS), diversity=np.full(ROWS, 0.02)), n_modes=8)]
    d_loss = trace()["d_loss"].to_numpy().copy()
    d_loss[20:40] = 1.88e5 / 10
    texts += [d.explanation for d in diagnose(trace(d_loss=d_loss))]
    joined = " ".join(texts)
    assert "less than 0.1% of its peak 2.1" in joined and "D(fake) < 0.001" in joined
    assert "none of the 8 modes" in joined and " 0 of " not in joined
    import re
    assert not re.search(r"\de[-+]?\d", joined), joined


def test_a_run_near_the_digits_line_does_not_flap_between_healthy_and_learning():
    """A distance wobbling around the line: Healthy once clearly below it, and it stays so through a single
    measurement just above; two in a row well above end it."""
    wobble = np.where(np.arange(ROWS) % (2 * EVAL_EVERY) < EVAL_EVERY, 240.0, 270.0)
    verdicts = {codes(diagnose(trace(fid=wobble).head(rows)))[0] for rows in range(3 * EVAL_EVERY, ROWS + 1, EVAL_EVERY)}
    assert verdicts == {"healthy"}
    gone = np.full(ROWS, 100.0)
    gone[-2 * EVAL_EVERY:] = 900.0
    assert codes(diagnose(trace(fid=gone)))[0] != "healthy"


def test_few_confident_classes_while_the_distance_falls_are_an_early_phase_not_a_collapse():
    """Issue 24.3: LSGAN's first minutes (2-5 confident classes, distance falling 1,000 → 550) read as Mode collapse."""
    modes = np.where(np.arange(ROWS) < ROWS // 2, 2.0, 3.0)
    early = diagnose(trace(modes_covered=modes, fid=np.linspace(1000, 550, ROWS)))
    assert "mode_collapse" not in codes(early) and codes(early) == ["learning"]
    stuck = diagnose(trace(modes_covered=modes, fid=np.full(ROWS, 1000.0)))
    assert codes(stuck)[0] == "mode_collapse"
    like_its_reference = lambda step: (900.0, 1000.0, 1100.0)  # noqa: E731  a healthy run of the recipe was here too
    assert codes(diagnose(trace(modes_covered=modes, fid=np.full(ROWS, 1000.0)), reference_fid=like_its_reference)) \
        == ["learning"]
