"""Numbers as a class reads them: plain decimals, no exponents, no "0 of 8"."""
from __future__ import annotations

import numpy as np


def readable(x: float) -> str:
    """A number a class can read: plain decimals, no exponent (0.0054 → "0.0054", 1880 → "1,880", 2e-9 → "0.000")."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.3g}"
    if abs(x) >= 0.001:
        return f"{x:.2g}" if abs(x) < 0.01 else f"{x:.2f}"
    return "0.000" if x >= 0 else "-0.000"


def approx(x: float) -> str:
    """"≈ 0.27", or "< 0.001" for what would print as an exponent."""
    return f"< {readable(0.001)}" if 0 <= float(x) < 0.001 else f"≈ {readable(x)}"


def share_text(share: float) -> str:
    """A fraction as a percentage a class can read: 2.2e-08 → "less than 0.1%"."""
    percent = 100 * float(share)
    return "less than 0.1%" if percent < 0.1 else f"{readable(percent)}%"
