"""benchmarks/gpu_check.py is for a lent GPU machine: anywhere else it says so in one line and exits 0, measuring
nothing, so a CPU-only machine (every CI run) never depends on it."""
import os
import subprocess
import sys

from conftest import REPO


def test_without_cuda_it_exits_cleanly_saying_nothing_was_measured():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides any GPU, so this runs the same on a GPU machine
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device here") and "nothing measured" in lines[0]
    assert "PASS" not in done.stdout and "FAIL" not in done.stdout and not done.stderr.strip()
