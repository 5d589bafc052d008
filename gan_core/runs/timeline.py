"""One timeline for every view: a run as it was at a chosen step (curves up to it, the nearest saved grid, the
quality numbers and health diagnosis of then), and two runs' grids at the same step side by side.

Pure functions on RunSnapshot data, so Monitor and Compare only draw, and the CLI's `--at-step` checks steps
the same way."""
from __future__ import annotations

import dataclasses
from bisect import bisect_left

import numpy as np

from ..errors import StudioError

QUALITY_COLUMNS = ["fid", "modes_covered", "confidence", "label_accuracy", "diversity"]


class StepError(StudioError, ValueError):
    """A step that is not in the run; the message names the run's range."""


def check_step(step, last_step: int, what: str = "this run") -> int:
    """`step` as an int within 0..last_step, else StepError with the range."""
    try:
        value = int(step)
    except (TypeError, ValueError):
        raise StepError(f"step must be a whole number, got {str(step)[:40]!r}") from None  # pages show it as plain text
    if not 0 <= value <= last_step:
        raise StepError(f"step {value} is outside {what} (it has steps 0 to {last_step})")
    return value


def nearest(steps: list[int], step: int) -> int | None:
    """The saved step closest to `step` (the earlier one on a tie); None when nothing was saved."""
    if not steps:
        return None
    i = bisect_left(steps, step)
    candidates = steps[max(0, i - 1):i + 1]
    return min(candidates, key=lambda s: (abs(s - step), s))


def at_or_before(steps: list[int], step: int) -> int | None:
    """The last saved step not after `step` (a checkpoint a fork can start from)."""
    earlier = [s for s in steps if s <= step]
    return earlier[-1] if earlier else None


def as_of(snap, step: int):
    """The snapshot as it looked at `step`: metrics up to it, the grid nearest to it, its status `running` unless
    `step` is the run's end. The eval dict (histogram) is the latest only, so it is dropped for earlier steps."""
    if step >= snap.step:
        return snap
    metrics = snap.metrics[snap.metrics["step"] <= step] if len(snap.metrics) else snap.metrics
    grid_step = nearest(snap.grid_steps, step)
    return dataclasses.replace(snap, metrics=metrics, step=step, status="running", message="",
                               latest_grid_step=grid_step, latest_grid=None, extra={})


def quality_at(metrics, step: int) -> dict:
    """The last quality measurement at or before `step` (its own step included), {} when none yet."""
    if not len(metrics) or "fid" not in metrics:
        return {}
    rows = metrics[(metrics["step"] <= step) & metrics["fid"].notna()]
    if not len(rows):
        return {}
    row = rows.iloc[-1]
    return {"step": int(row["step"]), **{c: float(row[c]) for c in QUALITY_COLUMNS if c in row and np.isfinite(row[c])}}


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """|a − b| of two grids of the same shape, brightened so small changes show; None when the shapes differ."""
    if a is None or b is None or a.shape != b.shape:
        return None
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).astype(np.float32)
    scale = 255.0 / max(float(diff.max()), 1.0)
    return (diff * scale).clip(0, 255).astype(np.uint8)
