"""A plain-words diagnosis of a run from its metric trace, each finding with its evidence and a fix.

Input is the metrics DataFrame of RunSnapshot (one row per logged step; quality columns where they were measured).
Output is plain data (a list of Diagnosis, most serious first) so Monitor and `python -m gan_core diagnose` show
the same words. Rules, judged on the LEVELS of the recent rows (not only on trends):
  diverged            a loss or gradient norm became NaN/Inf, the run stopped as diverged, or the losses exploded
                      (for the BCE family: D's loss averaging far above the balanced ln 4)
  vanishing_gradient  D rejects every fake (D(fake) → 0) and G's gradient collapsed to a sliver of its peak
  d_wins              D(real) → 1 and D(fake) → 0 (for critic scores: the real−fake gap keeps growing)
  mode_collapse       images: few classes covered or diversity fell; 2-D: few of the mixture's modes reached by
                      a narrow cloud (or one sitting on those few modes)
  oscillating         the losses swing up and down periodically instead of settling
  healthy             none of the above (with enough history to judge); `too_early` before that
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .reference import reference_departure

MIN_ROWS = 10  # logged rows before anything is judged
RECENT = 10  # rows the level rules average over
WINDOW = 40  # rows the critic-gap trend looks at
OSC_WINDOW = 120  # rows the oscillation rule looks at (several swings)
OSC_MIN_ROWS = 30
D_SURE = 0.9  # D(real) at least this and D(fake) at most 1 − this: D tells them apart almost perfectly
G_GRAD_COLLAPSE = 0.05  # ‖∇G‖ below this share of its peak …
G_GRAD_TINY = 0.05  # … and below this in absolute terms (minimax: ~0.005): G's gradient has vanished
EXPLODED = 1e4  # a loss or gradient norm beyond this has blown up
D_LOSS_EXPLODED = 10.0  # BCE-family D loss averaging above this (balanced: ln 4 ≈ 1.39): every update overshoots
FEW_CLASSES = 0.3  # image runs: at most this share of the classes covered, in the last evaluations
FEW_MODES = 0.5  # 2-D runs: at most this share of the mixture's modes reached …
ON_MODE_PERCENT = 50.0  # … while at least this share of samples sits on a mode (so G is not still spread out) …
NARROW_SPREAD = 0.1  # … or the samples' spread is at most this share of the data's (one blob)
COLLAPSE_EVALS = 2  # consecutive evaluations a collapse must show (image runs)
POINT_COLLAPSE_GRIDS = 4  # 2-D runs: the last grids judged together (a wandering blob stretches now and then)


@dataclass(frozen=True)
class Diagnosis:
    code: str  # diverged | vanishing_gradient | d_wins | mode_collapse | oscillating | healthy | too_early
    title: str
    level: str  # error | warning | ok | info: how a page should colour it
    explanation: str
    fix_text: str = ""
    fix_preset: str | None = None  # a gan_core.config.PRESETS name, or None
    fix_settings: dict = field(default_factory=dict)  # RunConfig field -> suggested value
    step: int | None = None  # the step the evidence was read at
    evidence: dict = field(default_factory=dict)  # the numbers the finding rests on

    @property
    def text(self) -> str:
        """The words Monitor shows and the CLI prints."""
        return f"{self.title}. {self.explanation}" + (f" Try: {self.fix_text}" if self.fix_text else "")

    def to_json(self) -> dict:
        return {"finding": self.code, "text": self.text, "step": self.step, "evidence": self.evidence}


def _cfg(config, name, default):
    if config is None:
        return default
    value = config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)
    return default if value is None else value


def _halved_lrs(config) -> dict:
    return {"lr_d": float(_cfg(config, "lr_d", 2e-4)) / 2, "lr_g": float(_cfg(config, "lr_g", 2e-4)) / 2}


def _num(x: float, digits: int = 3) -> float:
    return float(f"{float(x):.{digits}g}")


def training_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Rows the training loop wrote (evaluation-only rows carry no learning rate)."""
    if metrics is None or not len(metrics):
        return pd.DataFrame(columns=["step", "d_loss", "g_loss", "d_real", "d_fake"])
    key = "lr_d" if "lr_d" in metrics else "d_loss"
    return metrics[metrics[key].notna()]


def _rising(values: np.ndarray) -> bool:
    """A trend that stands out of the noise: the later half's mean above the earlier half's by most of the
    window's spread. Scale-free, so it works for raw critic scores."""
    values = values[np.isfinite(values)]
    if len(values) < MIN_ROWS:
        return False
    half = len(values) // 2
    rise = values[half:].mean() - values[:half].mean()
    return rise > 0.8 * values.std() and rise > 1e-9


def _levels(recent: pd.DataFrame) -> dict:
    cols = [c for c in ("d_real", "d_fake", "g_loss", "d_loss", "grad_norm_g") if c in recent]
    return {c: _num(recent[c].astype(float).mean()) for c in cols if recent[c].notna().any()}


# ---------------------------------------------------------------------- rules
def check_diverged(train: pd.DataFrame, status: str | None, config) -> Diagnosis | None:
    cols = [c for c in ("d_loss", "g_loss", "grad_norm_d", "grad_norm_g") if c in train]
    values = train[cols].to_numpy(dtype=float).reshape(len(train), len(cols))
    bad = np.isinf(values).any(1) | (np.abs(np.nan_to_num(values)) > EXPLODED).any(1)
    if "d_loss" in train:
        bad |= train["d_loss"].isna().to_numpy()  # a training row always logs d_loss: missing = it was NaN
    if status != "diverged" and not bad.any():
        return None
    steps = train["step"].to_numpy()
    step = int(steps[bad][0]) if bad.any() else (int(steps[-1]) if len(steps) else None)
    evidence = {"status": status}
    if bad.any():
        first = values[bad][0]
        evidence.update({c: (_num(v) if np.isfinite(v) else str(v)) for c, v in zip(cols, first)})
    where = f" at step {step}" if step is not None else ""
    return Diagnosis(
        "diverged", "Diverged", "error",
        f"The losses or gradients blew up (NaN, infinite or beyond {EXPLODED:.0e}){where}: the weights exploded and "
        f"training cannot recover from here. The last good checkpoint is kept.",
        "Restart with much smaller learning rates (2e-4 is the DCGAN default) and gradient clipping; spectral "
        "normalisation also keeps D in check.", None, {**_halved_lrs(config), "grad_clip": 10.0}, step, evidence)


def check_exploding(train: pd.DataFrame, score_kind: str, config) -> Diagnosis | None:
    """Finite but wild: a BCE-family D loss that averages far above the balanced game's ln 4 ≈ 1.39 means D is
    confidently wrong again and again: every update overshoots (the learning rate is too high)."""
    if score_kind != "probability" or len(train) < MIN_ROWS:
        return None
    window_mean = train["d_loss"].astype(float).rolling(RECENT).mean().to_numpy()
    exploded = np.nonzero(window_mean >= D_LOSS_EXPLODED)[0]
    if not len(exploded):
        return None  # judged over the whole run: a run that blew up and then sat still is still a blown-up run
    worst = int(np.nanargmax(window_mean))
    recent = train.iloc[worst - RECENT + 1: worst + 1]
    d_loss = recent["d_loss"].astype(float)
    step = int(train["step"].iloc[exploded[0]])
    ev = {**_levels(recent), "d_loss_max": _num(d_loss.max()), "worst_step": int(recent["step"].iloc[-1])}
    if "g_loss" in recent and recent["g_loss"].notna().any():
        ev["g_loss_max"] = _num(recent["g_loss"].astype(float).max())
    lrs = f" (lr_d = {_cfg(config, 'lr_d', '?')}, lr_g = {_cfg(config, 'lr_g', '?')})" if config is not None else ""
    return Diagnosis(
        "diverged", "Diverged", "error",
        f"From step {step} on, D's loss averaged {ev['d_loss']:.3g} (around step {ev['worst_step']}) and jumped as high "
        f"as {ev['d_loss_max']:.3g}, "
        f"where a balanced game sits near 1.4; G's loss reached {ev.get('g_loss_max', float('nan')):.3g}. Every update "
        f"overshoots{lrs}: the weights are thrown around instead of learning, and the samples stay noise.",
        "Use learning rates about 100× smaller (2e-4, the DCGAN default) and Adam's β1 = 0.5.",
        None, {"lr_d": 2e-4, "lr_g": 2e-4, "beta1": 0.5}, step, ev)


def _d_sure(recent: pd.DataFrame) -> bool:
    real, fake = recent["d_real"].astype(float).mean(), recent["d_fake"].astype(float).mean()
    return bool(real >= D_SURE and fake <= 1 - D_SURE)


def check_vanishing_gradient(train: pd.DataFrame, score_kind: str, config) -> Diagnosis | None:
    """The minimax case: D wins, and with a saturating loss G's gradient vanishes exactly then."""
    recent = train.tail(RECENT)
    if score_kind != "probability" or "grad_norm_g" not in train or not _d_sure(recent):
        return None
    g = train["grad_norm_g"].astype(float).to_numpy()
    peak = float(np.nanmax(pd.Series(g).rolling(3, min_periods=1).median().to_numpy()))
    now = float(np.nanmedian(recent["grad_norm_g"].astype(float)))
    if not (peak > 0 and now <= G_GRAD_COLLAPSE * peak and now <= G_GRAD_TINY):
        return None
    step = int(recent["step"].iloc[-1])
    ev = {**_levels(recent), "grad_norm_g_peak": _num(peak), "grad_norm_g_share_of_peak": _num(now / peak)}
    minimax = _cfg(config, "loss", "") == "minimax"
    why = ("With the saturating minimax loss log(1 − D(G(z))) G's loss is flat exactly there, so it learns nothing."
           if minimax else "G receives almost no signal about how to improve.")
    return Diagnosis(
        "vanishing_gradient", "Vanishing gradient", "warning",
        f"D rejects every fake (D(real) ≈ {ev['d_real']:.2f}, D(fake) ≈ {ev['d_fake']:.2g} around step {step}) and "
        f"G's gradient norm fell to {now:.3g}, {100 * now / peak:.2g}% of its peak {peak:.3g}. {why}",
        "Switch G to the non-saturating loss (loss = bce: maximise log D(G(z))), which is steep exactly where "
        "D wins; a Wasserstein critic (wgan-gp) also keeps G's gradients alive.",
        None, {"loss": "bce"} if minimax else {"loss": "wgan-gp", "n_critic": 5}, step, ev)


def check_d_wins(train: pd.DataFrame, score_kind: str, config) -> Diagnosis | None:
    recent = train.tail(RECENT)
    if len(recent) < MIN_ROWS or recent[["d_real", "d_fake"]].isna().all().any():
        return None
    step = int(recent["step"].iloc[-1])
    ev = _levels(recent)
    if score_kind == "probability":
        if not _d_sure(recent):
            return None
        g_text = f", G's loss ≈ {ev['g_loss']:.3g}" if "g_loss" in ev else ""
        return Diagnosis(
            "d_wins", "D is winning", "warning",
            f"Around step {step}, D(real) ≈ {ev['d_real']:.2f} and D(fake) ≈ {ev['d_fake']:.2g}{g_text}: the "
            f"discriminator tells real from fake almost perfectly, so its verdict carries little information about "
            f"how G should improve, and the samples stop getting better.",
            "Handicap D: a smaller learning rate or fewer D steps per G step (n_critic), one-sided label smoothing "
            "and instance noise on its inputs; or a Wasserstein critic (preset wgan-gp-mlp).",
            None, {"lr_d": _num(float(_cfg(config, "lr_d", 2e-4)) / 4), "n_critic": 1, "label_smoothing": 0.1,
                   "instance_noise": 0.1}, step, ev)
    window = train.tail(WINDOW)
    if not _rising(window["g_loss"].to_numpy(dtype=float)):
        return None
    gap = (window["d_real"] - window["d_fake"]).to_numpy(dtype=float)
    if not (_rising(gap) and gap[len(gap) // 2:].mean() > 0):
        return None
    ev["gap"] = _num(ev["d_real"] - ev["d_fake"])
    return Diagnosis(
        "d_wins", "D is winning", "warning",
        f"The critic's gap between real and fake scores keeps growing (now {ev['gap']:.3g} at step {step}) while "
        f"G's loss rises: the critic is pulling away from the generator.",
        "Slow the critic down: give it half the learning rate, or add an R1 penalty on real data.",
        None, {"lr_d": float(_cfg(config, "lr_d", 2e-4)) / 2, "r1_gamma": 10.0}, step, ev)


def _collapse_fix(config) -> tuple[str, str | None, dict]:
    if str(_cfg(config, "arch", "")) == "mlp2d":
        d_hidden = [max(128, int(w)) for w in _cfg(config, "d_hidden", [128, 128])] + [128]
        return ("Give D the capacity to see every mode (the 2-D default uses 3 layers of 128), or train a "
                "Wasserstein critic, which rewards covering every mode.", None, {"d_hidden": d_hidden[:3]})
    if bool(_cfg(config, "conditional", False)):
        return ("Give G more room to spread out: a Wasserstein critic rewards covering every mode; halving G's "
                "learning rate also helps.", None, {"lr_g": float(_cfg(config, "lr_g", 2e-4)) / 2})
    return ("Make G draw every digit: train a conditional GAN (it is asked for each class in turn, so it cannot drop "
            "one), or use a Wasserstein critic (preset wgan-gp-mlp).", None, {"conditional": True})


def check_mode_collapse(metrics: pd.DataFrame, config, num_classes: int | None, n_modes: int | None) -> Diagnosis | None:
    if "modes_covered" not in metrics:
        return None
    evals = metrics[metrics["modes_covered"].notna()]
    if len(evals) < COLLAPSE_EVALS:
        return None
    modes = evals["modes_covered"].to_numpy(dtype=float)
    last = evals.tail(POINT_COLLAPSE_GRIDS if n_modes else COLLAPSE_EVALS)
    step = int(evals["step"].iloc[-1])
    findings, ev = [], {"modes_covered": int(modes[-1])}
    if n_modes:  # a 2-D mixture: few modes reached by a cloud that is narrow or sits on its few modes
        hq = last["hq_percent"].to_numpy(dtype=float) if "hq_percent" in last else np.full(len(last), np.nan)
        spread = last["diversity"].to_numpy(dtype=float) if "diversity" in last else np.full(len(last), np.nan)
        ev.update(n_modes=int(n_modes), hq_percent=_num(hq[-1]), spread=_num(spread[-1]))
        few = len(last) >= POINT_COLLAPSE_GRIDS and (last["modes_covered"] <= FEW_MODES * n_modes).all()
        narrow = np.median(np.nan_to_num(spread, nan=1.0)) <= NARROW_SPREAD  # median: a wandering blob stretches
        on_modes = np.median(np.nan_to_num(hq)) >= ON_MODE_PERCENT
        if few and (narrow or on_modes):
            findings.append(f"only {modes[-1]:.0f} of the {n_modes} modes are reached, and G's samples " + (
                f"huddle in a cloud {100 * np.median(spread):.2g}% as wide as the data" if narrow else
                f"sit on those few ({hq[-1]:.0f}% on a mode)"))
        kind = "points"
    else:
        k = num_classes or 10
        ev["num_classes"] = k
        peak = modes[:-1].max()
        if (last["modes_covered"] <= FEW_CLASSES * k).all():
            findings.append(f"only {modes[-1]:.0f} of {k} classes covered")
        elif modes[-1] <= peak - 2 and modes[-1] < k:
            findings.append(f"classes covered fell from {peak:.0f}/{k} to {modes[-1]:.0f}/{k}")
        if "diversity" in evals and evals["diversity"].notna().sum() >= 3:
            div = evals["diversity"].dropna().to_numpy(dtype=float)
            best = div[:-2].max()
            ev["diversity"] = _num(div[-1])
            if best > 0 and div[-1] < 0.6 * best and div[-2] < 0.6 * best:
                findings.append(f"sample diversity dropped to {div[-1]:.2f} from {best:.2f} "
                                f"(1.0 = as varied as the real data)")
        kind = "samples"
    if not findings:
        return None
    fix_text, preset, settings = _collapse_fix(config)
    return Diagnosis(
        "mode_collapse", "Mode collapse", "warning",
        f"At step {step}, " + "; ".join(findings) + f". G found a few {kind} that fool D and stopped exploring the rest.",
        fix_text, preset, settings, step, ev)


def periodic_swing(values: np.ndarray) -> int | None:
    """The period (in rows) of a large, regular swing in `values`, or None. Periodic = after a linear detrend the
    autocorrelation dips clearly negative and then comes back clearly positive (one full cycle seen);
    large = the swing is at least a tenth of the level it swings around."""
    x = values[np.isfinite(values)]
    if len(x) < OSC_MIN_ROWS:
        return None
    t = np.arange(len(x))
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    power, level = float((x * x).mean()), float(np.abs(values[np.isfinite(values)].mean()))
    if power <= 0 or x.std() < max(0.1 * level, 1e-6):
        return None
    r = np.array([(x[:-k] * x[k:]).mean() / power for k in range(1, len(x) // 2)])
    troughs = np.nonzero(r < -0.4)[0]
    if not len(troughs):
        return None
    above = np.nonzero(r[troughs[0]:] > 0.5)[0]
    if not len(above):
        return None
    peak = troughs[0] + above[0]
    while peak + 1 < len(r) and r[peak + 1] >= r[peak]:  # climb to the top of the lobe: that lag is the period
        peak += 1
    return int(peak + 1)


def check_oscillating(train: pd.DataFrame, config) -> Diagnosis | None:
    recent = train.tail(OSC_WINDOW)
    for col, label in (("d_loss", "D's loss"), ("g_loss", "G's loss")):
        if col not in recent:
            continue
        values = recent[col].to_numpy(dtype=float)
        period = periodic_swing(values)
        if period:
            steps = np.diff(recent["step"].to_numpy(dtype=float))
            every = float(np.median(steps)) if len(steps) else 1.0
            step = int(recent["step"].iloc[-1])
            ev = {f"{col}_min": _num(np.nanmin(values)), f"{col}_max": _num(np.nanmax(values)),
                  "period_steps": int(round(period * every))}
            return Diagnosis(
                "oscillating", "Oscillating", "warning",
                f"{label} swings between {ev[col + '_min']:.3g} and {ev[col + '_max']:.3g} about every "
                f"{ev['period_steps']} steps (up to step {step}) instead of settling: G and D keep over-correcting "
                f"each other.",
                "Take smaller steps: halve both learning rates (and keep Adam's β1 at 0.5); an EMA of G's weights "
                "smooths the samples meanwhile.", None, {**_halved_lrs(config), "beta1": 0.5, "ema": 0.999}, step, ev)
    return None


# ---------------------------------------------------------------------- entry points
def diagnose(metrics: pd.DataFrame, score_kind: str = "probability", status: str | None = None, config=None,
             num_classes: int | None = None, n_modes: int | None = None) -> list[Diagnosis]:
    """Every finding, most serious first; exactly one `healthy` (or `too_early`) entry when nothing is wrong.

    score_kind: RunSnapshot.score_kind ("probability" for the BCE family, "critic" for raw scores).
    config: the run's config (dict or RunConfig), used to suggest concrete values.
    n_modes: the mode count of a 2-D mixture (ring-8: 8), None for image runs."""
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
    vanishing = check_vanishing_gradient(train, score_kind, config)
    found = [d for d in (vanishing, None if vanishing else check_d_wins(train, score_kind, config),
                         check_mode_collapse(metrics, config, num_classes, n_modes), check_oscillating(train, config)) if d]
    if found:
        return found
    ev = _levels(train.tail(RECENT))
    has_quality = "modes_covered" in metrics and metrics["modes_covered"].notna().any()
    if has_quality:
        ev["modes_covered"] = int(metrics["modes_covered"].dropna().iloc[-1])
    note = "" if has_quality else " (Mode collapse is judged from quality metrics, which this run has not logged yet.)"
    return [Diagnosis("healthy", "Healthy", "ok",
                      "Losses are finite and steady, D is not overpowering G, and nothing is swinging or collapsing."
                      + note, step=last_step, evidence=ev)]


def diagnose_snapshot(snap) -> list[Diagnosis]:
    """diagnose() with everything a RunSnapshot knows (status, score kind, config, classes or modes)."""
    evaluation = (snap.extra or {}).get("eval") or {}
    classes = evaluation.get("num_classes") if isinstance(evaluation, dict) else None
    found = diagnose(snap.metrics, snap.score_kind, snap.status, snap.config, classes,
                     mixture_modes(_cfg(snap.config, "dataset", "")))
    off = reference_departure(snap.metrics, snap.config) if found[0].code != "diverged" else None
    if off is None:
        return found
    preset, far = off  # the preset's healthy reference curves (reference.py)
    return found + [Diagnosis("off-reference", "Far from a healthy run", "warning",
                              f"{far} (the reference is a known-good run of `{preset}`).",
                              "Compare with the faint band on the curves; if this run changed the preset's settings, "
                              "the change is the first suspect.")]


@functools.lru_cache(maxsize=32)
def mixture_modes(dataset: str) -> int | None:
    """How many modes a 2-D mixture has (ring-8: 8), None for images and sets without modes."""
    from ..data import DATASETS, dataset_info, load_points
    if dataset not in DATASETS or dataset_info(dataset).kind != "points":
        return None
    centres = load_points(dataset).centres
    return None if centres is None else len(centres)


