"""What a 2-D run's samples cover: modes of the mixture reached and the share of samples near one."""
from __future__ import annotations

import numpy as np


def mode_metrics(samples, centres, sigma: float, min_count: int = 1) -> dict:
    """The VEEGAN / Unrolled-GAN protocol for ring-8 and grid-25 (Srivastava et al. 2017, §5.1):

    - a sample is high quality when it lies within 3σ of its nearest mode;
    - a mode is captured when it is the nearest mode of at least `min_count` high-quality samples. VEEGAN's
      tables use min_count = 1; `modes_20` also reports PacGAN's stricter rule (≥ 20 of 2,500 samples).
    """
    x = np.asarray(samples, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    finite = np.isfinite(x).all(1)
    d = np.sqrt(((x[finite, None, :] - c[None]) ** 2).sum(-1)) if finite.any() else np.zeros((0, len(c)))
    nearest, dist = d.argmin(1) if len(d) else np.zeros(0, int), d.min(1) if len(d) else np.zeros(0)
    hq = dist <= HQ_SIGMAS * sigma
    counts = np.bincount(nearest[hq], minlength=len(c))
    return {"modes": int((counts >= min_count).sum()), "modes_20": int((counts >= PACGAN_MIN_COUNT).sum()),
            "n_modes": len(c), "hq_percent": 100.0 * hq.sum() / max(len(x), 1), "mode_counts": counts.tolist()}


def point_modes(samples: np.ndarray, points) -> dict:
    """The metric row of a 2-D run's fixed-noise samples: modes of the mixture reached and the share of samples
    within 3σ of a mode (VEEGAN's protocol, as the playground measures it). {} for sets without modes."""
    if getattr(points, "centres", None) is None:
        return {}
    centres = points.centres.cpu().numpy().astype(np.float64)
    m = mode_metrics(samples, centres, points.sigma)
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x).all(1)]
    real_spread = float(((centres - centres.mean(0)) ** 2).sum(1).mean()) + 2 * points.sigma ** 2
    spread = float(((x - x.mean(0)) ** 2).sum(1).mean()) if len(x) > 1 else 0.0
    return {"modes_covered": m["modes"], "hq_percent": m["hq_percent"], "diversity": spread / real_spread}


HQ_SIGMAS = 3.0  # a sample is high quality within 3σ of its nearest mode (VEEGAN §5.1)


PACGAN_MIN_COUNT = 20  # PacGAN's stricter rule: a mode with fewer than 20 of 2,500 samples is lost
