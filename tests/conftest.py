"""Shared fixtures. Keep runs tiny (narrow nets, small batches, few steps) so the whole suite stays fast on 2 cores."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python -m pytest` from the repo root finds gan_core anyway; plain `pytest` may not
    sys.path.insert(0, str(REPO))

from gan_core import RunStore, build_config  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # the MLflow tests log to a local file store only
os.environ.setdefault("GAN_STUDIO_WORKERS", "thread")  # dashboards under test train on a thread their hooks reach;
# tests/test_dashboard_processes.py checks the users' default, a process of the run's own

SHARED_DATA = REPO.parent / "shared" / "data"  # full MNIST for tests (../shared/data)

# Narrow nets and a small batch: enough to exercise every code path, cheap on a CPU.
TINY = dict(g_features=8, d_features=8, g_hidden=[32], d_hidden=[32], batch_size=16, device="cpu",
            log_every=1, sample_every=1000, checkpoint_every=1000, eval_every=0)  # quality metrics: tests/test_metrics.py


@pytest.fixture(scope="session", autouse=True)
def evaluator_cache(tmp_path_factory):
    """Quality evaluators train into one temp folder per test session, never into the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("evaluators")
        mp.setenv("GAN_STUDIO_CACHE", str(path))
        yield path


@pytest.fixture
def tiny_config():
    """Factory: a validated, tiny RunConfig; keyword arguments override anything (dataset defaults still apply)."""

    def make(**overrides):
        values = {**TINY, "steps": 5, "grid_size": 10, **overrides}  # 10: one sample per class when conditional
        return build_config(**values).validate()

    return make


def gan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gan-train-") and t.is_alive()]


@pytest.fixture
def store(tmp_path):
    """A RunStore in a temp folder, shut down after the test so no trainer thread outlives it."""
    s = RunStore(tmp_path / "runs")
    yield s
    s.shutdown(timeout=60)
    assert not gan_threads(), "a trainer thread outlived its test"
