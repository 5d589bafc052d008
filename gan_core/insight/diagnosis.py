"""The verdict a page, the timeline and `python -m gan_core diagnose` show: health.py's rules applied in order, the
samples' own measure (an image run is "Healthy" only when its samples are digits), and each finding's fix."""
from __future__ import annotations

import dataclasses
import functools

import pandas as pd

from .health import (COVERED_MODES, MIN_ROWS, RECENT, Diagnosis, _cfg, _coverage, _levels, _num, check_d_wins,
                     check_diverged, check_exploding, check_mode_collapse, check_oscillating, check_samples,
                     check_vanishing_gradient, count_text, quality_rows, training_rows)
from .reference import reference_departure
from .words import readable


# ---------------------------------------------------------------------- entry points
def diagnose(metrics: pd.DataFrame, score_kind: str = "probability", status: str | None = None, config=None,
             num_classes: int | None = None, n_modes: int | None = None, measured: bool | None = None,
             reference_fid=None) -> list[Diagnosis]:
    """Every finding, most serious first; exactly one `healthy` (or a not-yet entry) when nothing is wrong.

    score_kind: RunSnapshot.score_kind ("probability" for the BCE family, "critic" for raw scores).
    config: the run's config (dict or RunConfig), used to suggest concrete values.
    n_modes: the mode count of a 2-D mixture (ring-8: 8), None for image runs.
    measured: whether the run's samples are measured (image runs: quality evaluation on); False = "Healthy" cannot be
    said; None = infer from the metrics. reference_fid: step -> (lo, mid, hi) of a healthy run's distance, or None."""
    metrics = metrics if metrics is not None else pd.DataFrame()
    train = training_rows(metrics)
    diverged = check_diverged(train, status, config)
    if diverged:
        return [diverged]
    last_step = int(train["step"].iloc[-1]) if len(train) else 0
    if len(train) < MIN_ROWS:
        return [Diagnosis("too_early", "Too early to tell", "info",
                          f"{len(train)} logged steps so far; the diagnosis needs about {MIN_ROWS}.",
                          step=last_step, evidence={"rows": len(train)})]
    exploding = check_exploding(train, score_kind, config)
    if exploding:
        return [exploding]
    k = num_classes or 10
    evals = None if n_modes else quality_rows(metrics)
    vanishing = check_vanishing_gradient(train, score_kind, config)
    found = [d for d in (vanishing, None if vanishing else check_d_wins(train, score_kind, config, evals, k),
                         check_mode_collapse(metrics, config, num_classes, n_modes, reference_fid),
                         check_oscillating(train, config)) if d]
    samples = None if n_modes else check_samples(metrics, config, num_classes, reference_fid)
    if found:
        return found + ([samples] if samples and samples.code == "not_learning" else [])
    if samples:
        return [samples]
    ev = _levels(train.tail(RECENT))
    balanced = "the losses are finite and steady, D is not overpowering G, and nothing is swinging or collapsing"
    if n_modes:
        covered = _coverage(metrics, n_modes)
        if covered is None:
            return [Diagnosis("too_early", "Too early to tell", "info", "The losses look balanced; the first grid of "
                              "samples, which shows the modes G reaches, comes next.", step=last_step, evidence=ev)]
        median, at = covered
        ev.update(modes_covered=_num(median), n_modes=int(n_modes))
        if median < COVERED_MODES * n_modes:
            return [Diagnosis("learning", f"Learning: {count_text(median, n_modes, 'modes').replace('only ', '')} "
                              f"reached so far", "info",
                              f"Around step {at}, G's points reach {count_text(median, n_modes, 'modes')} (the median of "
                              f"the last grids); {balanced}. Watch the scatter spread over the ring.",
                              step=at, evidence=ev)]
        return [Diagnosis("healthy", "Healthy", "ok", f"G's points reach {int(median)} of the {n_modes} modes around "
                          f"step {at}, and {balanced}.", step=last_step, evidence=ev)]
    if evals is not None and len(evals):
        row = evals.iloc[-1]
        ev.update(fid=_num(row["fid"]), modes_covered=int(row["modes_covered"]), num_classes=k)
        return [Diagnosis("healthy", "Healthy", "ok",
                          f"The samples are digits (Fréchet distance {readable(row['fid'])}, {int(row['modes_covered'])} "
                          f"of {k} classes at step {int(row['step'])}), and {balanced}.", step=last_step, evidence=ev)]
    if measured is False:
        return [Diagnosis("unmeasured", "Losses balanced; samples not measured", "info",
                          f"The losses are finite and steady and D is not overpowering G, but nothing checks whether G "
                          f"draws digits: this run trains with quality evaluation off (eval_every = 0). Look at the "
                          f"fixed-noise grid, or turn the evaluation on.", step=last_step, evidence=ev)]
    if measured:
        every = _cfg(config, "eval_every", 0)
        return [Diagnosis("too_early", "Too early to tell", "info",
                          f"The losses look balanced; the first measurement of the samples (every {every} steps) "
                          f"decides whether they are digits.", step=last_step, evidence=ev)]
    return [Diagnosis("healthy", "Healthy", "ok", f"{balanced[0].upper()}{balanced[1:]} (judged from the losses: "
                      f"this run's samples have no quality measure).", step=last_step, evidence=ev)]


def measures_samples(config) -> bool | None:
    """Whether "Healthy" can rest on a measurement of the samples: True for an image generator with quality evaluation
    on, False with it off; None where no evaluator exists (restorers, unlabelled sets): the losses are all there is."""
    if config is None or str(_cfg(config, "task", "generate")) != "generate":
        return None
    from ..data import DATASETS, dataset_info
    dataset = _cfg(config, "dataset", "")
    if dataset not in DATASETS or dataset_info(dataset).kind != "image" or not dataset_info(dataset).num_classes:
        return None
    return bool(_cfg(config, "eval_every", 0))


def declared_fix(config) -> dict | None:
    """A Learn demo's own fix ({"preset", "settings", "why"} in its PRESETS entry): what its one-click fix loads."""
    from ..presets import PRESETS
    return PRESETS.get(str(_cfg(config, "preset", "")), {}).get("fix")


def diagnose_snapshot(snap) -> list[Diagnosis]:
    """diagnose() with everything a RunSnapshot knows (status, score kind, config, classes or modes, the preset's
    healthy reference). A Learn demo's findings carry the demo's declared fix, the one Learn's lesson tested."""
    from .reference import fid_reference
    evaluation = (snap.extra or {}).get("eval") or {}
    classes = evaluation.get("num_classes") if isinstance(evaluation, dict) else None
    found = diagnose(snap.metrics, snap.score_kind, snap.status, snap.config, classes,
                     mixture_modes(_cfg(snap.config, "dataset", "")), measures_samples(snap.config),
                     fid_reference(snap.config))
    fix = declared_fix(snap.config)
    if fix:
        found = [dataclasses.replace(d, fix_preset=fix["preset"], fix_settings=dict(fix.get("settings", {})),
                                     fix_text=f"{d.fix_text} {fix['why']}".strip())
                 if d.level in ("warning", "error") else d for d in found]
    off = reference_departure(snap.metrics, snap.config) if found[0].code != "diverged" else None
    if off is None:
        return found
    preset, far = off  # the preset's healthy reference curves (reference.py)
    return found + [Diagnosis("off-reference", "Far from a healthy run", "warning",
                              f"{far} (the reference is a known-good run of `{preset}`).",
                              "Compare with the faint band on the curves; if this run changed the preset's settings, "
                              "the change is the first suspect.")]


def fix_config(config, diagnosis: Diagnosis):
    """The config "Open the fix in Train" loads and Start runs: the fix's preset (else the run's own config) with the
    fix's settings, named `<name>-fixed`, its preset field naming what it now is (never the failure demo)."""
    from ..config import RunConfig
    from ..presets import build_config
    if diagnosis.fix is None:
        raise ValueError(f"{diagnosis.title}: there is no fix to apply")
    own = config if isinstance(config, RunConfig) else RunConfig.from_dict(dict(config))
    base = build_config(diagnosis.fix_preset) if diagnosis.fix_preset else own
    name = (own.name or own.preset or "run")[:42]
    return base.replace(**diagnosis.fix_settings, name=f"{name}-fixed")


@functools.lru_cache(maxsize=32)
def mixture_modes(dataset: str) -> int | None:
    """How many modes a 2-D mixture has (ring-8: 8), None for images and sets without modes."""
    from ..data import DATASETS, dataset_info, load_points
    if dataset not in DATASETS or dataset_info(dataset).kind != "points":
        return None
    centres = load_points(dataset).centres
    return None if centres is None else len(centres)


