"""Healthy reference curves: what a known-good run of each image preset looked like, step by step.

Why: "what does a healthy loss curve look like?" has no answer from one run alone. Each image preset ships a
few-KB CSV (assets/reference/<preset>.csv, recorded by benchmarks/record_reference.py): per logged step the
low / middle / high of each metric over a short window of steps, a band the Monitor draws faintly under the
run's own curves, and that the health diagnosis compares against ("G's loss is 5× the reference here").
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).parents[1] / "assets" / "reference"
METRICS = ["d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "fid"]
# The failure demos train tutorial 002's MLP GAN with one thing broken: their healthy twin is classic-mlp.
SAME_RECIPE = {"demo-minimax": "classic-mlp", "demo-d-too-strong": "classic-mlp", "demo-lr-too-high": "classic-mlp"}
WINDOW_ROWS = 3  # logged rows on each side that make one step's band
FAR_RATIO = 3.0  # "far from the reference": more than 3× above or below its band


def reference_path(preset: str) -> Path:
    return REFERENCE_DIR / f"{preset}.csv"


def reference_for(config) -> tuple[str, pd.DataFrame] | None:
    """(the preset whose reference applies, its band table) for a run's config (a RunConfig or its dict), or None."""
    preset = ((config or {}).get("preset") if isinstance(config, dict) else getattr(config, "preset", "")) or ""
    preset = SAME_RECIPE.get(preset, preset)
    if not preset or not reference_path(preset).is_file():
        return None
    try:
        return preset, pd.read_csv(reference_path(preset))
    except (OSError, ValueError):
        return None


def band(metrics: pd.DataFrame, window: int = WINDOW_ROWS, max_rows: int = 60) -> pd.DataFrame:
    """The reference table of one run's metrics: step plus <metric>_lo/_mid/_hi, from the rows within `window`
    logged rows of each step (min, median, max), thinned to at most `max_rows` steps. Evaluation-only values
    (fid) keep their own steps."""
    train = metrics[metrics["d_loss"].notna()].reset_index(drop=True)
    out = pd.DataFrame({"step": train["step"].astype(int)})
    for col in METRICS:
        if col not in metrics or metrics[col].dropna().empty:
            continue
        values = train[col] if col != "fid" else metrics.set_index("step")[col].dropna().reindex(train["step"]).reset_index(drop=True)
        rolling = values.rolling(2 * window + 1, center=True, min_periods=1)
        out[f"{col}_lo"], out[f"{col}_mid"], out[f"{col}_hi"] = rolling.min(), rolling.median(), rolling.max()
        if col == "fid":  # only where measured
            for part in ("lo", "mid", "hi"):
                out.loc[values.isna(), f"fid_{part}"] = np.nan
    keep = np.unique(np.linspace(0, len(out) - 1, min(max_rows, len(out))).round().astype(int)) if len(out) else []
    fid_rows = out.index[out.get("fid_mid", pd.Series(index=out.index, dtype=float)).notna()]
    return out.loc[sorted(set(keep) | set(fid_rows))].reset_index(drop=True)


def at_step(reference: pd.DataFrame, column: str, step: float) -> tuple[float, float, float] | None:
    """(lo, mid, hi) of the reference at `step` (linear between recorded steps); None outside its range."""
    if f"{column}_mid" not in reference:
        return None
    rows = reference[["step", f"{column}_lo", f"{column}_mid", f"{column}_hi"]].dropna()
    if not len(rows) or step < rows["step"].iloc[0] or step > rows["step"].iloc[-1]:
        return None
    return tuple(float(np.interp(step, rows["step"], rows[f"{column}_{p}"])) for p in ("lo", "mid", "hi"))


def departures(metrics: pd.DataFrame, reference: pd.DataFrame, step: float | None = None,
               columns=("g_loss", "d_loss")) -> list[tuple[str, float, float, float]]:
    """Where a run sits far outside the reference band at `step` (default: its latest logged step):
    (column, run value, reference middle, ratio), ratio = run / reference middle."""
    train = metrics[metrics["d_loss"].notna()] if "d_loss" in metrics else metrics
    if step is not None:
        train = train[train["step"] <= step]
    out = []
    for col in columns:
        if col not in train or train[col].dropna().empty:
            continue
        recent = train[["step", col]].dropna().tail(2 * WINDOW_ROWS + 1)
        value, at = float(recent[col].median()), float(recent["step"].iloc[-1])
        ref = at_step(reference, col, at)
        if ref is None or not math.isfinite(value):
            continue
        lo, mid, hi = ref
        scale = max(abs(mid), 1e-3)
        ratio = value / scale if mid > 0 else float("nan")
        if value > hi + (FAR_RATIO - 1) * max(abs(hi), 1e-3) or (mid > 0 and 0 < value < lo / FAR_RATIO):
            out.append((col, value, mid, ratio))
    return out


def describe(departure: tuple[str, float, float, float], step: float) -> str:
    col, value, mid, ratio = departure
    name = {"g_loss": "G's loss", "d_loss": "D's loss"}.get(col, col)
    times = f"{ratio:.1f}× the reference" if math.isfinite(ratio) and ratio >= 1 else \
        (f"1/{1 / ratio:.0f} of the reference" if math.isfinite(ratio) and ratio > 0 else "far from the reference")
    return f"{name} is {times} at step {step:.0f} ({value:.3g} vs a healthy {mid:.3g})"


def reference_departure(metrics: pd.DataFrame, config, step: float | None = None) -> tuple[str, str] | None:
    """(Which preset's reference, what sits far from it) when the run's losses leave its preset's healthy band, else
    None. health.py turns it into a finding (this module stays below health: no import back)."""
    found = reference_for(config)
    if found is None or metrics is None or not len(metrics) or "d_loss" not in metrics:
        return None
    preset, reference = found
    train = metrics[metrics["d_loss"].notna()]
    if step is not None:
        train = train[train["step"] <= step]
    if not len(train):
        return None
    far = departures(train, reference)
    if not far:
        return None
    at = float(train["step"].iloc[-1])
    return preset, "; ".join(describe(d, at) for d in far)


def fid_reference(config):
    """step -> (lo, mid, hi) of the Fréchet distance a healthy run of the config's preset had at that step (None
    outside the recorded steps), or None when the preset has no recorded distance."""
    found = reference_for(config)
    if found is None or "fid_mid" not in found[1] or found[1]["fid_mid"].dropna().empty:
        return None
    table = found[1]
    return lambda step: at_step(table, "fid", step)
