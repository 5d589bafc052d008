"""A plain-words diagnosis of a run from its metric trace, each finding with a fix a student can apply.

Input is the metrics DataFrame of RunSnapshot (one row per logged step; quality columns where an evaluation
finished). Output is plain data (a list of Diagnosis) so a page only draws it. Rules, most serious first:
  diverged       a loss or gradient norm became NaN/Inf (or the run stopped as diverged)
  d-winning      D(real)→1 and D(fake)→0 (for critic scores: the real−fake gap keeps growing) while G's loss rises
  mode-collapse  fewer classes covered than before, or the samples' diversity fell well below its best
  oscillating    the losses swing up and down periodically instead of settling
  healthy        none of the above (with enough history to judge); `too-early` before that
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_ROWS = 10  # logged rows before anything is judged
WINDOW = 40  # recent rows the trend rules look at
OSC_WINDOW = 120  # rows the oscillation rule looks at (several swings)
OSC_MIN_ROWS = 30


@dataclass(frozen=True)
class Diagnosis:
    code: str  # diverged | d-winning | mode-collapse | oscillating | healthy | too-early
    title: str
    level: str  # error | warning | ok | info: how a page should colour it
    explanation: str
    fix_text: str = ""
    fix_preset: str | None = None  # a gan_core.config.PRESETS name, or None
    fix_settings: dict = field(default_factory=dict)  # RunConfig field -> suggested value


def _cfg(config, name, default):
    if config is None:
        return default
    value = config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)
    return default if value is None else value


def _halved_lrs(config) -> dict:
    return {"lr_d": float(_cfg(config, "lr_d", 2e-4)) / 2, "lr_g": float(_cfg(config, "lr_g", 2e-4)) / 2}


def training_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Rows the training loop wrote (evaluation-only rows carry no learning rate)."""
    if metrics is None or not len(metrics):
        return pd.DataFrame(columns=["step", "d_loss", "g_loss", "d_real", "d_fake"])
    key = "lr_d" if "lr_d" in metrics else "d_loss"
    return metrics[metrics[key].notna()]


def _rising(values: np.ndarray) -> bool:
    """A trend that stands out of the noise: the later half's mean above the earlier half's by most of the
    window's spread. Scale-free, so it works for probabilities and raw critic scores alike."""
    values = values[np.isfinite(values)]
    if len(values) < MIN_ROWS:
        return False
    half = len(values) // 2
    rise = values[half:].mean() - values[:half].mean()
    return rise > 0.8 * values.std() and rise > 1e-9


# ---------------------------------------------------------------------- rules
def check_diverged(train: pd.DataFrame, status: str | None, config) -> Diagnosis | None:
    cols = [c for c in ("d_loss", "g_loss", "grad_norm_d", "grad_norm_g") if c in train]
    values = train[cols].to_numpy(dtype=float).reshape(len(train), len(cols))
    bad = np.isinf(values).any(1)
    if "d_loss" in train:
        bad |= train["d_loss"].isna().to_numpy()  # a training row always logs d_loss: missing = it was NaN
    if status != "diverged" and not bad.any():
        return None
    where = f" at step {int(train['step'].to_numpy()[bad][0])}" if bad.any() else ""
    return Diagnosis(
        "diverged", "Diverged", "error",
        f"The losses or gradients became NaN or infinite{where}: the weights blew up and training cannot continue "
        f"from here. The last good checkpoint is kept.",
        "Restart with half the learning rates and gradient clipping; spectral normalisation also keeps D in check.",
        None, {**_halved_lrs(config), "grad_clip": 10.0})


def check_d_winning(train: pd.DataFrame, score_kind: str, config) -> Diagnosis | None:
    recent = train.tail(WINDOW)
    if len(recent) < MIN_ROWS or recent[["d_real", "d_fake"]].isna().all().any():
        return None
    g = recent["g_loss"].to_numpy(dtype=float)
    if not _rising(g):
        return None
    late = recent.tail(max(len(recent) // 2, 1))
    real, fake = float(late["d_real"].mean()), float(late["d_fake"].mean())
    if score_kind == "probability":
        if not (real >= 0.85 and fake <= 0.15):
            return None
        seen = f"D(real) ≈ {real:.2f} and D(fake) ≈ {fake:.2f}"
        return Diagnosis(
            "d-winning", "D is winning", "warning",
            f"{seen}: the discriminator tells real from fake almost perfectly, so G's loss keeps rising and its "
            f"gradients carry little information about how to improve.",
            "Handicap D: one-sided label smoothing and instance noise on its inputs; or switch to a Wasserstein "
            "critic (preset wgan-gp-dcgan), whose gradients do not vanish when it wins.",
            "wgan-gp-dcgan", {"label_smoothing": 0.1, "instance_noise": 0.1})
    gap = (recent["d_real"] - recent["d_fake"]).to_numpy(dtype=float)
    if not (_rising(gap) and gap[len(gap) // 2:].mean() > 0):
        return None
    return Diagnosis(
        "d-winning", "D is winning", "warning",
        f"The critic's gap between real and fake scores keeps growing (now {real - fake:.3g}) while G's loss rises: "
        f"the critic is pulling away from the generator.",
        "Slow the critic down: give it half the learning rate, or add an R1 penalty on real data.",
        None, {"lr_d": float(_cfg(config, "lr_d", 2e-4)) / 2, "r1_gamma": 10.0})


def check_mode_collapse(metrics: pd.DataFrame, config, num_classes: int) -> Diagnosis | None:
    if "modes_covered" not in metrics:
        return None
    evals = metrics[metrics["modes_covered"].notna()]
    if len(evals) < 2:
        return None
    modes = evals["modes_covered"].to_numpy(dtype=float)
    findings = []
    peak = modes[:-1].max()
    if modes[-1] <= peak - 2 and modes[-1] < num_classes:
        findings.append(f"classes covered fell from {peak:.0f}/{num_classes} to {modes[-1]:.0f}/{num_classes}")
    if "diversity" in evals and evals["diversity"].notna().sum() >= 3:
        div = evals["diversity"].dropna().to_numpy(dtype=float)
        best = div[:-2].max()
        if best > 0 and div[-1] < 0.6 * best and div[-2] < 0.6 * best:
            findings.append(f"sample diversity dropped to {div[-1]:.2f} from {best:.2f} (1.0 = as varied as the real data)")
    if not findings:
        return None
    conditional = bool(_cfg(config, "conditional", False))
    if conditional:
        fix_text = ("Give G more room to spread out: a Wasserstein critic (preset wgan-gp-dcgan) rewards covering "
                    "every mode; halving G's learning rate also helps.")
        settings = {"lr_g": float(_cfg(config, "lr_g", 2e-4)) / 2}
    else:
        fix_text = ("Make G draw every digit: train a conditional GAN (it is asked for each class in turn, so it "
                    "cannot drop one), or use a Wasserstein critic (preset wgan-gp-dcgan).")
        settings = {"conditional": True}
    return Diagnosis(
        "mode-collapse", "Mode collapse", "warning",
        "G is producing fewer kinds of samples than before: " + "; ".join(findings) + ". It found a few outputs "
        "that fool D and stopped exploring the rest.", fix_text, "wgan-gp-dcgan", settings)


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
        period = periodic_swing(recent[col].to_numpy(dtype=float))
        if period:
            steps = np.diff(recent["step"].to_numpy(dtype=float))
            every = float(np.median(steps)) if len(steps) else 1.0
            return Diagnosis(
                "oscillating", "Oscillating", "warning",
                f"{label} swings up and down about every {period * every:.0f} steps instead of settling: G and D keep "
                f"over-correcting each other.",
                "Take smaller steps: halve both learning rates (and keep Adam's β1 at 0.5); an EMA of G's weights "
                "smooths the samples meanwhile.", None, {**_halved_lrs(config), "beta1": 0.5, "ema": 0.999})
    return None


# ---------------------------------------------------------------------- entry points
def diagnose(metrics: pd.DataFrame, score_kind: str = "probability", status: str | None = None, config=None,
             num_classes: int | None = None) -> list[Diagnosis]:
    """Every finding, most serious first; exactly one `healthy` (or `too-early`) entry when nothing is wrong.

    score_kind: RunSnapshot.score_kind ("probability" for the BCE family, "critic" for raw scores).
    config: the run's config (dict or RunConfig), used to suggest concrete values."""
    metrics = metrics if metrics is not None else pd.DataFrame()
    train = training_rows(metrics)
    diverged = check_diverged(train, status, config)
    if diverged:
        return [diverged]
    if len(train) < MIN_ROWS:
        return [Diagnosis("too-early", "Too early to tell", "info",
                          f"{len(train)} logged steps so far; the diagnosis needs about {MIN_ROWS}.")]
    k = num_classes or 10
    found = [d for d in (check_d_winning(train, score_kind, config), check_mode_collapse(metrics, config, k),
                         check_oscillating(train, config)) if d]
    if found:
        return found
    has_quality = "fid" in metrics and metrics["fid"].notna().any()
    note = "" if has_quality else " (Mode collapse is judged from quality metrics, which this run has not logged yet.)"
    return [Diagnosis("healthy", "Healthy", "ok",
                      "Losses are finite and steady, D is not overpowering G, and nothing is swinging or collapsing." + note)]


def diagnose_snapshot(snap) -> list[Diagnosis]:
    """diagnose() with everything a RunSnapshot knows (status, score kind, config, classes)."""
    evaluation = (snap.extra or {}).get("eval") or {}
    classes = evaluation.get("num_classes") if isinstance(evaluation, dict) else None
    found = diagnose(snap.metrics, snap.score_kind, snap.status, snap.config, classes)
    from .reference import reference_diagnosis  # hook: the preset's healthy reference curves (reference.py)
    off = reference_diagnosis(snap.metrics, snap.config) if found[0].code != "diverged" else None
    return found + ([off] if off else [])
