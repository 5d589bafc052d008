"""One check of a CUDA machine, in under 5 minutes: what the mission's GPU does with GAN Studio.

    python benchmarks/gpu_check.py                 # on a machine with an NVIDIA GPU
    python benchmarks/gpu_check.py --quick         # shorter windows and runs (about 2 minutes)

Checks, each printed as `PASS` or `FAIL` with its numbers:
  device      the GPU's name, memory and bf16 support; what `precision: auto` picks there (bf16 autocast).
  fast-mnist  the default trained on CUDA in timed windows: images/s, bf16 autocast on, losses finite.
  dcgan64     seed 004's 64×64 DCGAN (the GPU preset) the same way.
  dashboard   the default started through RunStore, as the dashboard starts it (its live evaluation on): it finishes
              on the GPU, writes curves, grids, a checkpoint and a Fréchet distance that says digits were learned.
  torchrun    `torchrun --nproc_per_node 1 -m gan_core train` on the GPU: one DDP rank over NCCL that finishes.

Without CUDA it says so and exits 0 having measured nothing: this is a script for a lent GPU machine, never a test CI
depends on. The last line counts the checks: `gpu_check: N passed, M failed` (exit 1 when any failed).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

# Floors that only a working GPU path clears (a quiet 2-core CPU with AMX makes ~3,300 images/s on the default and
# a few hundred on dcgan64); they catch a run that silently fell back to the CPU or to fp32 eager crawling.
FLOORS = {"fast-mnist": 5_000.0, "dcgan64": 1_000.0}
DASHBOARD_FD_MAX = 60.0  # a default run that learned digits; noise scores in the hundreds
results: list[tuple[str, bool]] = []


def check(name: str, ok: bool, **numbers) -> bool:
    shown = " ".join(f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in numbers.items())
    print(f"{'PASS' if ok else 'FAIL'} {name}: {shown}", flush=True)
    results.append((name, ok))
    return ok


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def check_device() -> torch.device:
    from gan_core.engine.device import choose_precision
    device = torch.device("cuda")
    props = torch.cuda.get_device_properties(device)
    precision = choose_precision("auto", device, False)
    check("device", precision.bf16 and torch.cuda.is_bf16_supported(), gpu=props.name,
          memory_gib=props.total_memory / 2**30, capability=f"{props.major}.{props.minor}", auto=precision.label,
          torch=torch.__version__, cuda=torch.version.cuda)
    return device


def check_throughput(preset: str, seconds: float) -> None:
    """Images/s of the preset's real Trainer iterations on CUDA with bf16 autocast, after a warm-up."""
    from gan_core import build_config
    from gan_core.engine.trainer import Trainer
    try:
        cfg = build_config(preset, device="cuda", precision="bf16", eval_every=0, steps=1_000_000).validate()
        trainer = Trainer(cfg)
        for _ in range(20):  # cuDNN autotuning, allocator warm-up
            trainer.train_iteration()
        torch.cuda.synchronize()
        rates = []
        for _ in range(3):
            start, iters = time.perf_counter(), 0
            while time.perf_counter() - start < seconds / 3:
                trainer.train_iteration()
                iters += 1
            torch.cuda.synchronize()
            rates.append(iters * cfg.batch_size * cfg.n_critic / (time.perf_counter() - start))
        row = trainer.read_metrics(1.0, 0)
        finite = all(math.isfinite(row[k]) for k in ("d_loss", "g_loss"))
        rate = sorted(rates)[1]
        check(preset, trainer.gan.bf16 and finite and rate >= FLOORS[preset], images_per_s=rate,
              windows=[round(r) for r in rates], floor=FLOORS[preset], bf16_autocast=trainer.gan.bf16,
              d_loss=row["d_loss"], g_loss=row["g_loss"], batch=cfg.batch_size,
              peak_memory_gib=torch.cuda.max_memory_allocated() / 2**30)
    except Exception as e:  # one failed check must not hide the others
        check(preset, False, error=f"{type(e).__name__}: {e}")


def check_dashboard_run(seconds: float, data_root: str) -> None:
    """The default, started as the dashboard starts a run (RunStore.start, a trainer thread, live evaluation)."""
    from gan_core import RunStore, build_config
    try:
        store = RunStore(tempfile.mkdtemp(prefix="gpu-check-store-"))
        cfg = build_config("fast-mnist", device="auto", max_seconds=seconds, data_root=data_root).validate()
        run_id = store.start(cfg)
        status = store.wait(run_id, timeout=seconds + 180)
        snap = store.snapshot(run_id)
        evaluation = store.evaluation(run_id) or {}
        fd = evaluation.get("fid", float("nan"))
        rate = snap.step * cfg.batch_size / snap.elapsed if snap.elapsed else 0.0
        ok = (status == "finished" and "GPU" in str(snap.device) and bool(snap.checkpoints) and len(snap.grid_steps) > 1
              and math.isfinite(fd) and fd <= DASHBOARD_FD_MAX and rate >= FLOORS["fast-mnist"] / 2)
        check("dashboard", ok, status=status, device=snap.device, steps=snap.step, seconds=snap.elapsed,
              images_per_s=rate, fd=fd, fd_max=DASHBOARD_FD_MAX, grids=len(snap.grid_steps),
              checkpoints=len(snap.checkpoints), precision=snap.precision)
        store.shutdown(timeout=60)
    except Exception as e:
        check("dashboard", False, error=f"{type(e).__name__}: {e}")


def check_torchrun(steps: int) -> None:
    """One DDP rank on the GPU through torchrun: NCCL for CUDA tensors, and the run finishes."""
    out = Path(tempfile.mkdtemp(prefix="gpu-check-torchrun-"))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "gan_core",
           "train", "--preset", "fast-mnist", "--device", "cuda", "--steps", str(steps), "--eval-every", "0",
           "--quiet", "--out", str(out / "runs")]
    try:
        done = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=240)
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        run_dir = Path(result.get("run_dir", out / "missing"))
        events = (run_dir / "events.log").read_text() if (run_dir / "events.log").is_file() else ""
        ddp = next((line.split("] ", 1)[-1] for line in events.splitlines() if "DDP:" in line), "")
        ok = done.returncode == 0 and result.get("status") == "finished" and result.get("steps") == steps \
            and "nccl" in ddp
        check("torchrun", ok, rc=done.returncode, status=result.get("status"), steps=result.get("steps"),
              images_per_s=result.get("images_per_s"), ddp=ddp or "no DDP line in events.log",
              **({} if ok else {"stderr": done.stderr.strip()[-400:]}))
    except Exception as e:
        check("torchrun", False, error=f"{type(e).__name__}: {e}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter windows and runs")
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"), help="for the dashboard run's data")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}"
              f"); nothing measured. Run this on a machine with an NVIDIA GPU.")
        return 0
    start = time.perf_counter()
    print(f"gpu_check: torch {torch.__version__}, load {load()}", flush=True)
    check_device()
    window = 6.0 if args.quick else 15.0
    check_throughput("fast-mnist", window)
    check_throughput("dcgan64", window)
    check_dashboard_run(15.0 if args.quick else 30.0, args.data_root)
    check_torchrun(200 if args.quick else 500)
    passed = sum(ok for _, ok in results)
    print(f"gpu_check: {passed} passed, {len(results) - passed} failed in {time.perf_counter() - start:.0f} s "
          f"(load {load()})")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
