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
  not_learning        image runs: the samples are still noise (distance far above the preset's healthy reference at
                      that step, or not falling); `learning` (info) while they are not digits yet but on track
  healthy             none of the above AND the samples show it: an image run's samples are digits (a low distance,
                      most classes), a 2-D run reaches most modes. Without a measurement of the samples a run is
                      never called healthy: `too_early` (waiting for it) or `unmeasured` (quality evaluation off).
Rules read the metrics up to the step they judge, and nothing else, so the verdict at step N (Monitor's timeline,
`diagnose --step N`) is the one the live view showed then. Trend rules use windows of several evaluations, and an
image run's collapse verdict holds until as many evaluations clear it (hysteresis), so it does not flap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .words import approx, readable, share_text

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
COLLAPSE_EVALS = 3  # consecutive evaluations that start (and end) a collapse verdict on an image run
CONFIDENT = 0.75  # the evaluator's mean top-class probability above which few classes are a collapse, not noise
DIGITS_FID = 250.0  # image runs: a Fréchet distance at most this (with most classes) = the samples are digits
NOISE_FID = 700.0  # above this the samples are noise whatever the classes (noise: ~1,000-1,500; digits: < 100)
DIGITS_CLASSES = 0.8  # … and at least this share of the classes covered
FAR_FROM_REFERENCE = 2.0  # a distance above this × the healthy reference's high at that step is "far above"
STALLED_EVALS = 4  # evaluations over which a distance that fell less than STALL_SHARE counts as stalled
STALL_SHARE = 0.15
IMPROVING_SHARE = 0.15  # the distance fell at least this share below its recent worst: the samples are improving
GAP_WINDOW = 150  # rows the critic-gap trend looks at (several hundred steps: noise must not flip it)
GAP_GROWTH = 0.25  # … and the later half's gap must be this much larger than the earlier half's
COVERED_MODES = 0.85  # 2-D runs: the median of the last grids reaches at least this share of the modes = healthy
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

    @property
    def fix(self) -> dict | None:
        """{"preset": name or None, "settings": {field: value}}: what "Open the fix in Train" loads; None if none."""
        if not (self.fix_preset or self.fix_settings):
            return None
        return {"preset": self.fix_preset, "settings": dict(self.fix_settings)}

    def to_json(self) -> dict:
        return {"finding": self.code, "text": self.text, "step": self.step, "evidence": self.evidence,
                "fix": self.fix}


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
        f"The losses or gradients blew up (NaN, infinite or beyond {readable(EXPLODED)}){where}: the weights exploded and "
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
    first = int(train["step"].iloc[exploded[0]])
    step = int(recent["step"].iloc[-1])  # the evidence below is read here, so the finding claims this step
    ev = {**_levels(recent), "d_loss_max": _num(d_loss.max()), "first_step": first}
    if "g_loss" in recent and recent["g_loss"].notna().any():
        ev["g_loss_max"] = _num(recent["g_loss"].astype(float).max())
    lrs = f" (lr_d = {_cfg(config, 'lr_d', '?')}, lr_g = {_cfg(config, 'lr_g', '?')})" if config is not None else ""
    g_text = f"; G's loss reached {readable(ev['g_loss_max'])}" if "g_loss_max" in ev else ""
    return Diagnosis(
        "diverged", "Diverged", "error",
        f"From step {first} on, D's loss exploded: it averaged {readable(ev['d_loss'])} around step {step} and jumped "
        f"as high as {readable(ev['d_loss_max'])}, where a balanced game sits near 1.4{g_text}. Every update "
        f"overshoots{lrs}: the weights are thrown around instead of learning, and the samples stay noise. On the "
        f"Losses chart look at D's loss.",
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
        f"D rejects every fake (D(real) {approx(ev['d_real'])}, D(fake) {approx(ev['d_fake'])} around step {step}) and "
        f"G's gradient norm fell to {readable(now)}, {share_text(now / peak)} of its peak {readable(peak)}. {why}",
        "Switch G to the non-saturating loss (loss = bce: maximise log D(G(z))), which is steep exactly where "
        "D wins; a Wasserstein critic (wgan-gp) also keeps G's gradients alive.",
        None, {"loss": "bce"} if minimax else {"loss": "wgan-gp", "n_critic": 5}, step, ev)


def samples_improving(evals: pd.DataFrame) -> bool:
    """The samples' distance fell clearly below its worst of the last few measurements: G is learning."""
    fid = evals["fid"].dropna().to_numpy(dtype=float) if "fid" in evals else np.array([])
    if len(fid) < 2:
        return False
    return bool(fid[-1] <= (1 - IMPROVING_SHARE) * fid[-STALLED_EVALS - 1:-1].max())


def samples_are_digits(row, num_classes: int, margin: float = 1.0) -> bool:
    """One measurement shows digits: a low distance and most classes (`margin` > 1 loosens both, for staying)."""
    fid, modes = float(row.get("fid", np.nan)), float(row.get("modes_covered", np.nan))
    return bool(fid <= DIGITS_FID * margin and modes >= DIGITS_CLASSES * num_classes / margin)


def samples_stay_digits(evals: pd.DataFrame, num_classes: int) -> bool:
    """Whether the samples count as digits after the last measurement, with hysteresis so a run near the line does
    not flap between Healthy and Learning: one clear measurement turns it on, and it turns off only after
    COLLAPSE_EVALS - 1 measurements in a row outside a looser line (25% above the distance, a class fewer)."""
    on, misses = False, 0
    for _, row in evals.iterrows():
        if not on:
            on, misses = samples_are_digits(row, num_classes), 0
        else:
            misses = 0 if samples_are_digits(row, num_classes, margin=1.25) else misses + 1
            on = misses < COLLAPSE_EVALS - 1
    return on


def quality_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows that carry an image evaluation (a Fréchet distance)."""
    if metrics is None or "fid" not in metrics:
        return pd.DataFrame(columns=["step", "fid", "modes_covered", "confidence"])
    return metrics[metrics["fid"].notna()]


def _balance_fix(config) -> dict:
    """D faster than G: give D no more than G's learning rate and one step per G step; else quarter D's rate."""
    lr_d, lr_g = float(_cfg(config, "lr_d", 2e-4)), float(_cfg(config, "lr_g", 2e-4))
    if lr_d > lr_g or int(_cfg(config, "n_critic", 1)) > 1:
        return {"lr_d": lr_g, "n_critic": 1}
    return {"lr_d": _num(lr_d / 4)}


def check_d_wins(train: pd.DataFrame, score_kind: str, config, evals: pd.DataFrame | None = None,
                 num_classes: int = 10) -> Diagnosis | None:
    """D certain (probabilities) or a critic gap that keeps growing (raw scores). Not while the samples are digits or
    clearly improving: a confident D early in a healthy DCGAN is normal, and the samples are the judge."""
    recent = train.tail(RECENT)
    if len(recent) < MIN_ROWS or recent[["d_real", "d_fake"]].isna().all().any():
        return None
    if evals is not None and len(evals) and (samples_stay_digits(evals, num_classes) or samples_improving(evals)):
        return None
    step = int(recent["step"].iloc[-1])
    ev = _levels(recent)
    if score_kind == "probability":
        if not _d_sure(recent):
            return None
        g_text = f", G's loss {approx(ev['g_loss'])}" if "g_loss" in ev else ""
        return Diagnosis(
            "d_wins", "D is winning", "warning",
            f"Around step {step}, D(real) {approx(ev['d_real'])} and D(fake) {approx(ev['d_fake'])}{g_text}: the "
            f"discriminator tells real from fake almost perfectly, so its verdict carries little information about "
            f"how G should improve, and the samples stop getting better.",
            "Handicap D: no larger a learning rate than G's and one D step per G step (n_critic = 1); or a "
            "Wasserstein critic (preset wgan-gp-mlp).", None, _balance_fix(config), step, ev)
    window = train.tail(GAP_WINDOW)
    if len(window) < 4 * MIN_ROWS or not _rising(window["g_loss"].to_numpy(dtype=float)):
        return None
    gap = (window["d_real"] - window["d_fake"]).to_numpy(dtype=float)
    half = len(gap) // 2
    earlier, later = np.nanmean(gap[:half]), np.nanmean(gap[half:])
    if not (_rising(gap) and later > 0 and later > (1 + GAP_GROWTH) * max(earlier, 0.0)):
        return None
    ev["gap"] = _num(ev["d_real"] - ev["d_fake"])
    ev["gap_before"] = _num(earlier)
    first = int(window["step"].iloc[0])
    return Diagnosis(
        "d_wins", "D is winning", "warning",
        f"The critic's gap between real and fake scores keeps growing (from about {readable(earlier)} after step "
        f"{first} to {readable(ev['gap'])} at step {step}) while G's loss rises and the samples do not improve: the "
        f"critic is pulling away from the generator.",
        "Slow the critic down: give it half the learning rate, or add an R1 penalty on real data.",
        None, {"lr_d": float(_cfg(config, "lr_d", 2e-4)) / 2, "r1_gamma": 10.0}, step, ev)


def count_text(n: float, total: int, noun: str) -> str:
    """"only 3 of the 10 classes", "none of the 8 modes"."""
    return f"none of the {total} {noun}" if int(n) == 0 else f"only {int(n)} of the {total} {noun}"


def _sustained(bad: list[bool], evals: int = COLLAPSE_EVALS) -> bool:
    """Hysteresis over a sequence of checks: the verdict turns on after `evals` bad checks in a row and off only
    after `evals` good ones in a row; whether it is on after the last check."""
    on, run = False, 0
    for b in bad:
        run = run + 1 if b != on else 0
        if run >= evals:
            on, run = not on, 0
    return on


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


def check_mode_collapse(metrics: pd.DataFrame, config, num_classes: int | None, n_modes: int | None,
                        reference_fid=None) -> Diagnosis | None:
    if "modes_covered" not in metrics:
        return None
    evals = metrics[metrics["modes_covered"].notna()]
    if len(evals) < (POINT_COLLAPSE_GRIDS if n_modes else COLLAPSE_EVALS):
        return None
    modes = evals["modes_covered"].to_numpy(dtype=float)
    last = evals.tail(POINT_COLLAPSE_GRIDS if n_modes else COLLAPSE_EVALS)
    step = int(evals["step"].iloc[-1])
    findings, ev = [], {"modes_covered": int(modes[-1])}
    if n_modes:  # a 2-D mixture: few modes reached by a cloud that is narrow or sits on its few modes
        hq = last["hq_percent"].to_numpy(dtype=float) if "hq_percent" in last else np.full(len(last), np.nan)
        spread = last["diversity"].to_numpy(dtype=float) if "diversity" in last else np.full(len(last), np.nan)
        ev.update(n_modes=int(n_modes), hq_percent=_num(hq[-1]), spread=_num(spread[-1]))
        few = (last["modes_covered"] <= FEW_MODES * n_modes).all()
        # the narrowest of the last grids: a blob chased round the ring stretches while it moves, and shrinks again
        narrowest = float(np.min(np.nan_to_num(spread, nan=1.0)))
        narrow = narrowest <= NARROW_SPREAD
        on_modes = np.median(np.nan_to_num(hq)) >= ON_MODE_PERCENT
        if few and (narrow or on_modes):
            reached = count_text(modes[-1], n_modes, "modes")
            findings.append(f"{reached} {'is' if int(modes[-1]) <= 1 else 'are'} reached, "
                            f"and G's samples " + (
                                f"huddle in one small cloud (at times {share_text(narrowest)} as wide as the data)"
                                + (" that sits between the modes" if np.median(np.nan_to_num(hq)) < 5 else "")
                                if narrow else f"sit on those few ({readable(hq[-1])}% on a mode)"))
        kind = "points"
    else:
        k = num_classes or 10
        ev["num_classes"] = k
        conf = evals["confidence"].to_numpy(dtype=float) if "confidence" in evals else np.ones(len(evals))
        conf = np.nan_to_num(conf, nan=1.0)
        few = [bool(m <= FEW_CLASSES * k and c >= CONFIDENT) for m, c in zip(modes, conf)]
        peaks = np.maximum.accumulate(modes)
        fell = [bool(i and m <= peaks[i - 1] - 2 and m < DIGITS_CLASSES * k) for i, m in enumerate(modes)]
        # an early phase is not a collapse: while the distance keeps falling (LSGAN's first minutes draw a few
        # confident classes, then more) the samples are still on their way
        early = False
        if "fid" in evals and float(evals["fid"].iloc[-1]) > DIGITS_FID:  # not digits yet: on the way there?
            ref = reference_fid(int(evals["step"].iloc[-1])) if reference_fid else None
            on_track = ref is not None and float(evals["fid"].iloc[-1]) <= FAR_FROM_REFERENCE * ref[2]
            early = on_track or samples_improving(evals)
        if _sustained([a or b for a, b in zip(few, fell)]) and not early:
            if few[-1]:
                drawn = count_text(modes[-1], k, "classes")
                findings.append(f"{drawn} {'is' if int(modes[-1]) == 1 else 'are'} drawn, and the classifier is sure of "
                                f"{'it' if int(modes[-1]) == 1 else 'them'}")
            else:
                findings.append(f"classes covered fell from {peaks[-1]:.0f}/{k} to {modes[-1]:.0f}/{k}")
        if "diversity" in evals and evals["diversity"].notna().sum() >= COLLAPSE_EVALS + 1:
            div = evals["diversity"].dropna().to_numpy(dtype=float)
            best = div[:-COLLAPSE_EVALS].max()
            ev["diversity"] = _num(div[-1])
            if best > 0 and (div[-COLLAPSE_EVALS:] < 0.6 * best).all():
                findings.append(f"sample diversity dropped to {readable(div[-1])} from {readable(best)} "
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
                f"{label} swings between {readable(ev[col + '_min'])} and {readable(ev[col + '_max'])} about every "
                f"{ev['period_steps']} steps (up to step {step}) instead of settling: G and D keep over-correcting "
                f"each other.",
                "Take smaller steps: halve both learning rates (and keep Adam's β1 at 0.5); an EMA of G's weights "
                "smooths the samples meanwhile.", None, {**_halved_lrs(config), "beta1": 0.5, "ema": 0.999}, step, ev)
    return None


def check_samples(metrics: pd.DataFrame, config, num_classes: int | None, reference_fid=None) -> Diagnosis | None:
    """What the latest measurement of an image run's samples shows, when they are not digits yet: `not_learning`
    (a warning: far above the healthy reference at that step, or not falling) or `learning` (info: on track).
    None when the samples are digits, or nothing was measured yet. reference_fid(step) -> (lo, mid, hi) or None."""
    evals = quality_rows(metrics)
    if not len(evals):
        return None
    k = num_classes or 10
    row = evals.iloc[-1]
    if samples_stay_digits(evals, k):
        return None
    step, fid = int(row["step"]), float(row["fid"])
    modes = float(row.get("modes_covered", np.nan))
    ev = {"fid": _num(fid), "modes_covered": None if not np.isfinite(modes) else int(modes), "num_classes": k}
    ref = reference_fid(step) if reference_fid else None
    fids = evals["fid"].to_numpy(dtype=float)
    stalled = len(fids) >= STALLED_EVALS and fid > (1 - STALL_SHARE) * fids[-STALLED_EVALS:].max()
    far = ref is not None and fid > FAR_FROM_REFERENCE * ref[2] and fid > DIGITS_FID
    classes = "" if ev["modes_covered"] is None else \
        f"; the classifier finds {count_text(modes, k, 'classes').replace('only ', '')} in them"
    what = (f"At step {step} the samples' Fréchet distance to real digits is {readable(fid)} (digits score below "
            f"{DIGITS_FID:.0f}, noise about 1,000 to 1,500){classes}")
    if ref is not None:
        ev["reference_fid"] = _num(ref[1])
        what += f", where a healthy run of this recipe was at {readable(ref[1])}"
    if far or (ref is None and stalled and fid > NOISE_FID):
        why = " and it has not fallen over the last measurements" if stalled else ""
        return Diagnosis(
            "not_learning", "Not learning yet: the samples are still noise", "warning",
            f"{what}{why}. Look at the fixed-noise grid (blobs or static, not digits) and the distance on the Quality "
            f"chart: it should fall steadily.",
            "Start from a recipe known to work (the fast default, fast-mnist) and change one setting at a time.",
            None, {}, step, ev)
    trend = " and falling" if samples_improving(evals) else ""
    on_track = ", so it is on track" if ref is not None else ""
    return Diagnosis(
        "learning", "Learning: no digits yet", "info",
        f"{what}{on_track}{trend}. Watch the fixed-noise grid turn from blobs into digits and the distance fall "
        f"below {DIGITS_FID:.0f}.", step=step, evidence=ev)


def _coverage(metrics: pd.DataFrame, n_modes: int) -> tuple[float, int] | None:
    """(median modes reached over the last grids, last grid's step) of a 2-D run, None before its first grids."""
    if "modes_covered" not in metrics:
        return None
    grids = metrics[metrics["modes_covered"].notna()].tail(POINT_COLLAPSE_GRIDS)
    if not len(grids):
        return None
    return float(grids["modes_covered"].median()), int(grids["step"].iloc[-1])
