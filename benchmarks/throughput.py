"""Training speed, side by side: the tutorials' own loops against gan_core's Trainer, the levers behind the
difference, FLOP/s against this machine's matmul peak, what dashboard readers cost, and whether bf16 trains
like fp32. Prints JSON lines; the `summary` lines carry the figures.

    python benchmarks/throughput.py                                  # every section, a few minutes on a 2-core CPU
    python benchmarks/throughput.py --device cuda                    # the same on a GPU
    python benchmarks/throughput.py --sections tutorial,flops --seconds 10 --repeats 5

Sections (--sections, comma-separated; default all but `compile`):
  choices    what `precision: auto` picks on this device and why (before: fp32 always), the CPU's AMX/bf16 features,
             and a timed fp32-vs-auto A/B of the default preset where they differ. Whether a GPU was measured.
  tutorial   tutorial 002 (MLP) and tutorial 000 (DCGAN32) loops as the seeds write them (benchmarks/tutorial_loops.py:
             DataLoader + per-item PIL transforms) vs the `classic-mlp` / `classic-dcgan` presets trained by
             RunStore (the real loop: metrics, grids, checkpoints), same nets, batch 128, full MNIST. Goals ≥3× / ≥2×.
  flops      FLOPs of one gan_core iteration (torch.utils.flop_counter) × iterations/s, against a timed 2048² torch.mm
             in fp32 and bf16, at the trainer's thread count and at all cores; and the speedup over the tutorial that
             these FLOPs would allow at the all-core fp32 peak (the ceiling).
  syncs      host round trips inside Trainer.train_iteration for several configs (Python-level .item/.tolist/bool/
             float/int/.cpu/.numpy; on CUDA also torch.cuda.set_sync_debug_mode). Goal 0.
  threads    the trainer's own CPU thread count vs the other choice (1 or all cores), in the real loop with the
             preset's live evaluation on, headless (benchmarks/sessions.py --threads measures it beside the dashboard).
  levers     A/B of each speed lever on one Trainer: Adam fused/foreach/per-tensor, bf16 autocast, channels_last
             (conv nets), one D call over real+fake (D without BatchNorm), DataLoader instead of resident data, a
             host sync every step.
  compile    torch.compile: one-off compile time, then compiled vs eager steps (slow on a small CPU: opt-in).
  readers    a run alone vs the same run while 4 threads read it at the dashboard's 1 Hz (snapshot, runs, grid,
             evaluation). Goal ≥ 90%.
  precision  quality parity: `fast-mnist` and `classic-dcgan` trained fp32 and `auto` (bf16 where the hardware has
             it) for the same iterations over 3 seeds: FID / classes covered / label accuracy medians, seconds, and
             the smoothed loss curves' mean |difference| (next to fp32 seed 0 vs seed 1 for scale).
  cores      does the default use the machine's cores: `python -m gan_core train` (the fast-mnist default, headless)
             with --workers 1 --threads 1 (one thread), as shipped (--workers auto, threads auto), with --workers at
             every core, and two default runs at once (their sum), alternating, `--cores-seconds` each; and the CPU-seconds
             per image of one thread and of the forced workers (start-up excluded; robust to other users' load),
             whose ratio bounds the speed-up an idle machine gives. Goal: auto
             ≥ 1.7× one thread on an idle 2-core machine (auto takes only the cores nobody else is using, so on a
             busy machine it stays at one process: compare the forced row there). Prints the CPU and AMX yes/no.
  busy       cores shared (benchmarks/busy.py): the default beside a process burning every core, and two runs at once
             in one process, old fixed threads vs `threads: 0`, with the fair share one thread can get. Goals ≥ 50%
             of its quiet speed, ≥ 80% of one run alone.
  quality    time to quality: the default (--quality-preset) trained 20, 30 and 60 s over 3 seeds, Fréchet distance of
             the evaluator trained on MNIST's 60k: medians, min and max, steps made, load; --quality-versus trains other
             settings beside it, interleaved. Goals FD <= 10 at 20 s, <= 5 at 60 s, 60 s never worse than 30 s.
  dashboard  the default trained from the dashboard with a browser on Monitor vs `python -m gan_core train`
             (benchmarks/sessions.py --vs-headless; needs Chromium). Goal ≥ 90%.

Every A/B alternates its settings in short windows inside one process, `--repeats` times, and reports medians
with the 1-minute load average, because other programs share the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from gan_core import RunStore, build_config  # noqa: E402
from gan_core.engine.device import resolve_device  # noqa: E402
from gan_core.engine.gan import make_optimizer  # noqa: E402
from gan_core.engine.threads import one_intra_op_thread_here  # noqa: E402
from gan_core.engine.trainer import Trainer  # noqa: E402

SECTIONS = ["choices", "tutorial", "flops", "syncs", "threads", "cores", "levers", "compile", "readers", "precision",
            "busy", "dashboard", "quality"]
DEFAULT_SECTIONS = [s for s in SECTIONS if s != "compile"]
HEADLINE = {"classic-mlp": "mlp", "classic-dcgan": "dcgan"}  # preset → tutorial loop (tutorial 002, tutorial 000)
GOALS = {"classic-mlp": 3.0, "classic-dcgan": 2.0}
PROCESS_THREADS = torch.get_num_threads()  # what a plain script (a tutorial) gets


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def median(xs) -> float:
    return round(statistics.median(xs), 1)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def on_own_thread(fn, threads: int):
    """fn() on a fresh thread with `threads` intra-op threads; its OpenMP pool ends with it. Measured work never runs
    on the main thread: a pool left there would throttle every later measurement (gan_core/engine/threads.py)."""
    out: dict = {}

    def work():
        torch.set_num_threads(threads)
        try:
            out["value"] = fn()
        except BaseException as e:  # re-raised on the caller's thread
            out["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def timed(step, seconds: float, min_iters: int, device, threads: int = PROCESS_THREADS) -> float:
    """Images/s of `step()` (which returns the images it consumed) over at least `seconds` and `min_iters` calls,
    on a thread of its own with `threads` intra-op threads."""
    def window() -> float:
        sync(device)
        images = iters = 0
        start = time.perf_counter()
        while iters < min_iters or time.perf_counter() - start < seconds:
            images += step()
            iters += 1
        sync(device)
        return images / (time.perf_counter() - start)
    return on_own_thread(window, threads)


def preset_config(preset: str, args, **overrides):
    data = dict(dataset="mnist", data_root=args.data_root) if preset in HEADLINE else {}
    return build_config(preset, device=args.device, **{"eval_every": 0, **data, **overrides}).validate()


def store_run(store: RunStore, cfg, readers: int = 0) -> dict:
    """Train `cfg` (time-limited) through RunStore, optionally with reader threads polling it at 1 Hz."""
    run_id = store.start(cfg)
    stop = threading.Event()
    calls: list[float] = []

    def read(kind: int) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            if kind == 0:
                store.snapshot(run_id)  # Monitor page: curves, status, latest grid
            elif kind == 1:
                store.runs()  # sidebar: every run's summary
            elif kind == 2:
                steps = store.snapshot(run_id, max_points=2).grid_steps
                if steps:
                    store.grid(run_id, steps[len(steps) // 2])  # a grid from the scrubber
            else:
                store.evaluation(run_id)
                store.snapshot(run_id, max_points=300)  # Compare page
            calls.append(time.perf_counter() - t0)
            stop.wait(1.0)

    threads = [threading.Thread(target=read, args=(k % 4,), daemon=True) for k in range(readers)]
    for t in threads:
        t.start()
    status = store.wait(run_id)
    stop.set()
    for t in threads:
        t.join()
    snap = store.snapshot(run_id)
    if status != "finished":
        raise SystemExit(f"run {run_id} ended {status}: {snap.message}")
    images = snap.step * cfg.batch_size * cfg.n_critic
    out = {"images_per_s": images / snap.elapsed, "steps": snap.step}
    if readers:
        out.update(reader_calls=len(calls), reader_ms_mean=round(1000 * statistics.mean(calls), 1) if calls else None)
    return out


# ---------------------------------------------------------------------- sections
def section_tutorial(args, device, found: dict) -> None:
    from tutorial_loops import SeedLoop
    store = RunStore(tempfile.mkdtemp(prefix="gan-throughput-"))
    for preset, which in HEADLINE.items():
        loop = SeedLoop(which, args.data_root, device)
        timed(loop.step, 0.5, 2, device)  # warm-up: the DataLoader's first epoch iterator, first allocations
        cfg = preset_config(preset, args, max_seconds=args.seconds)
        ours_threads = Trainer(cfg).cpu_threads() if device.type == "cpu" else PROCESS_THREADS
        tut, tut_same, ours = [], [], []
        for r in range(args.repeats):
            tut.append(timed(loop.step, args.seconds, args.min_iters, device))
            if ours_threads != PROCESS_THREADS:  # the same loop with gan_core's thread count: the rest of the gap
                tut_same.append(timed(loop.step, args.seconds, args.min_iters, device, ours_threads))
            run = store_run(store, cfg)
            ours.append(run["images_per_s"])
            emit(section="tutorial", preset=preset, repeat=r, tutorial_images_per_s=round(tut[-1], 1),
                 tutorial_at_gan_core_threads=round(tut_same[-1], 1) if tut_same else None,
                 gan_core_images_per_s=round(ours[-1], 1), gan_core_steps=run["steps"], load=load())
        found[preset], found[f"{preset}:tutorial"] = median(ours), median(tut)
        speedup = statistics.median(ours) / statistics.median(tut)
        emit(section="tutorial", summary=preset, tutorial=f"seed {'002' if which == 'mlp' else '000'}",
             tutorial_images_per_s=median(tut), gan_core_images_per_s=median(ours), speedup=round(speedup, 2),
             goal=f">= {GOALS[preset]}x", met=speedup >= GOALS[preset], tutorial_threads=PROCESS_THREADS,
             gan_core_threads=ours_threads if device.type == "cpu" else None,
             tutorial_at_gan_core_threads_images_per_s=median(tut_same) if tut_same else None,
             speedup_at_equal_threads=round(statistics.median(ours) / statistics.median(tut_same), 2) if tut_same else None,
             load=load())


def matmul_gflops(device, dtype, threads: int, n: int = 2048, seconds: float = 1.5) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    on_own_thread(lambda: torch.mm(a, b), threads)
    rate = timed(lambda: (torch.mm(a, b), 1)[1], seconds, 3, device, threads)
    return rate * 2 * n ** 3 / 1e9


def iteration_flops(trainer: Trainer) -> float:
    """FLOPs of one iteration, averaged over g_every iterations (G is updated on one of them)."""
    from torch.utils.flop_counter import FlopCounterMode
    k = trainer.cfg.g_every
    with FlopCounterMode(display=False) as counter:
        for _ in range(k):
            trainer.train_iteration()
    return counter.get_total_flops() / k


def section_flops(args, device, found: dict) -> None:
    threads_all = PROCESS_THREADS
    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        for threads in sorted({1, threads_all}) if device.type == "cpu" else [threads_all]:
            peaks[(dtype, threads)] = matmul_gflops(device, dtype, threads)
    emit(section="flops", matmul_peak_gflops={f"{str(d).split('.')[-1]}@{t}thr": round(v, 1) for (d, t), v in peaks.items()},
         cpu_amx=bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()),
         cpu_avx512_bf16=bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()), load=load())
    for preset in HEADLINE:
        cfg = preset_config(preset, args)
        trainer = Trainer(cfg)
        threads = trainer.cpu_threads() if device.type == "cpu" else threads_all
        flops = on_own_thread(lambda: iteration_flops(trainer), threads)
        rate = found.get(preset)
        if rate is None:  # the tutorial section did not run: measure the bare trainer here
            rate = timed(lambda: window_step(trainer), args.seconds, args.min_iters, device, threads)
        per_image = flops / (cfg.batch_size * cfg.n_critic)
        gflops = per_image * rate / 1e9
        fp32, bf16, fp32_all = peaks[(torch.float32, threads)], peaks[(torch.bfloat16, threads)], peaks[(torch.float32, threads_all)]
        tutorial = found.get(f"{preset}:tutorial")
        emit(section="flops", summary=preset, gflop_per_iteration=round(flops / 1e9, 3), images_per_s=round(rate, 1),
             achieved_gflops=round(gflops, 1), threads=threads, peak_fp32_gflops=round(fp32, 1),
             peak_bf16_gflops=round(bf16, 1), share_of_fp32_peak=round(gflops / fp32, 3),
             share_of_all_core_fp32_peak=round(gflops / fp32_all, 3),
             # the most these FLOPs allow: every core at the fp32 matmul peak, against the tutorial's measured rate
             images_per_s_at_all_core_fp32_peak=round(fp32_all * 1e9 / per_image, 1),
             speedup_ceiling_vs_tutorial=round(fp32_all * 1e9 / per_image / tutorial, 2) if tutorial else None,
             load=load())


def section_choices(args, device, found: dict) -> None:
    from gan_core.engine.device import amx_tiles, choose_precision
    chosen = choose_precision("auto", device)
    emit(section="choices", summary="precision", before="fp32 (the old default)", after=chosen.label,
         cpu_amx_tiles=amx_tiles(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
         cpu_avx512_bf16=bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()),
         gpu="measured here: " + torch.cuda.get_device_name() if device.type == "cuda" else
         "unmeasured: no GPU on this machine", load=load())
    if not chosen.bf16:
        emit(section="choices", summary="precision speed", note="auto = fp32 here: nothing to compare (bf16 parity "
             "and speed need a CUDA GPU with bf16 or a CPU with AMX tiles)")
        return
    cfg = preset_config("fast-mnist", args)
    threads = Trainer(cfg).cpu_threads() if device.type == "cpu" else PROCESS_THREADS
    rates = {"fp32": [], "auto": []}
    trainers = {k: Trainer(cfg.replace(precision=k)) for k in rates}
    for _ in range(args.repeats):
        for k, t in trainers.items():
            rates[k].append(timed(lambda: window_step(t), args.seconds, args.min_iters, device, threads))
    emit(section="choices", summary="precision speed", fp32_images_per_s=median(rates["fp32"]),
         auto_images_per_s=median(rates["auto"]), auto_vs_fp32=round(median(rates["auto"]) / median(rates["fp32"]), 2),
         load=load())


def window_step(trainer: Trainer, sync_every: int | None = None) -> int:
    """One iteration as the training loop does it, with its periodic metrics read (the one host sync)."""
    cfg = trainer.cfg
    trainer.train_iteration()
    if trainer.step % (sync_every or cfg.log_every) == 0:
        trainer.read_metrics(1.0, 1)
    return cfg.batch_size * cfg.n_critic


class SyncCounter(torch.overrides.TorchFunctionMode):
    NAMES = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy"}

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.NAMES:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def section_syncs(args, device, found: dict) -> None:
    variants = {"classic-mlp": {}, "classic-dcgan": {}, "fast-mnist": {},
                "fast-mnist + wgan-gp, n_critic 2": dict(loss="wgan-gp", n_critic=2),
                "fast-mnist + R1, instance noise, grad clip": dict(r1_gamma=1.0, instance_noise=0.1, grad_clip=10.0),
                "fast-mnist + wgan (weight clipping), bf16": dict(loss="wgan", precision="bf16")}
    for name, extra in variants.items():
        preset = name.split(" ")[0]
        trainer = Trainer(preset_config(preset, args, batch_size=16, **extra))
        trainer.train_iteration()  # first use: lazy initialisation is not the steady state
        counter = SyncCounter()
        cuda_warnings = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                with counter:
                    for _ in range(4):
                        trainer.train_iteration()
            finally:
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
            cuda_warnings = [str(w.message)[:120] for w in caught if "synchroniz" in str(w.message)]
        emit(section="syncs", summary=name, python_syncs_per_iteration=len(counter.seen) / 4, calls=sorted(set(counter.seen)),
             cuda_syncs_in_4_iterations=len(cuda_warnings) if device.type == "cuda" else None, goal=0)


class LoaderBatches:
    """The tutorials' data path behind the trainer's batch interface: DataLoader + per-item PIL transforms."""

    def __init__(self, root: str, size: int, batch_size: int, device):
        from torchvision import datasets, transforms
        tf = [transforms.Resize(size)] if size != 28 else []
        tf += [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
        ds = datasets.MNIST(root=root, train=True, transform=transforms.Compose(tf), download=False)
        self.loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True)
        self.it, self.device = iter(()), device

    def sample(self, batch_size: int):
        try:
            x, y = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            x, y = next(self.it)
        return x.to(self.device), y.to(self.device)


def lever_settings(trainer: Trainer, args, device) -> dict:
    """name → (apply, undo, host sync period) on a live Trainer; "default" is what the trainer does on its own."""
    cfg, t = trainer.cfg, trainer.gan
    conv = cfg.arch != "mlp"

    def adam(**impl):
        def apply():
            t.opt_g = torch.optim.Adam(t.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), **impl)
            t.opt_d = torch.optim.Adam(t.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), **impl)
        return apply

    def default_optimizers():
        betas = (cfg.beta1, cfg.beta2)
        t.opt_g = make_optimizer(cfg.optimizer, t.G.parameters(), cfg.lr_g, betas, device, cfg.beta1)
        t.opt_d = make_optimizer(cfg.optimizer, t.D.parameters(), cfg.lr_d, betas, device, cfg.beta1)

    def memory_format(fmt):
        def apply():
            for net in (t.G, t.D, t.G_ema):
                if net is not None:
                    net.to(memory_format=fmt)
        return apply

    nothing = lambda: None  # noqa: E731
    batches = trainer.batches
    settings = {"default": (nothing, nothing, None)}
    if cfg.optimizer == "adam":
        default_impl = "fused" if device.type in ("cpu", "cuda") else "foreach"
        for impl, kw in (("fused", dict(fused=True)), ("foreach", dict(foreach=True)), ("per-tensor", dict(foreach=False))):
            if impl != default_impl:
                settings[f"adam={impl} (default {default_impl})"] = (adam(**kw), default_optimizers, None)
    flip = not t.bf16  # precision auto may already have chosen bf16 (AMX, CUDA): then the lever is fp32
    settings["bf16 autocast" if flip else "fp32 (default bf16 autocast)"] = (
        lambda: setattr(t, "bf16", flip), lambda: setattr(t, "bf16", not flip), None)
    if conv and device.type == "cpu":  # the GAN's CPU default (gan.py build_gan)
        settings["NCHW (default channels_last)"] = (memory_format(torch.contiguous_format),
                                                    memory_format(torch.channels_last), None)
    elif conv:
        settings["channels_last"] = (memory_format(torch.channels_last), memory_format(torch.contiguous_format), None)
    if t.joint_d:
        settings["D called twice (default once on real+fake)"] = (lambda: setattr(t, "joint_d", False),
                                                                  lambda: setattr(t, "joint_d", True), None)
    if cfg.dataset in ("mnist", "mnist-embedded") and Path(args.data_root, "MNIST").is_dir():
        from gan_core.models import image_size_for
        loader = LoaderBatches(args.data_root, image_size_for(cfg), cfg.batch_size, device)
        settings["DataLoader + per-item transforms"] = (lambda: setattr(trainer, "batches", loader),
                                                        lambda: setattr(trainer, "batches", batches), None)
    settings["host sync every step"] = (nothing, nothing, 1)
    return settings


def section_levers(args, device, found: dict) -> None:
    for preset in args.lever_presets.split(","):
        cfg = preset_config(preset, args)
        trainer = Trainer(cfg)
        threads = trainer.cpu_threads() if device.type == "cpu" else PROCESS_THREADS
        settings = lever_settings(trainer, args, device)
        rates: dict[str, list[float]] = {name: [] for name in settings}
        for apply, undo, _ in settings.values():  # warm-up each setting once (oneDNN primitives, loader iterator)
            apply()
            timed(lambda: window_step(trainer), 0.2, 2, device, threads)
            undo()
        for r in range(args.repeats):
            for name, (apply, undo, sync_every) in settings.items():
                apply()
                rates[name].append(timed(lambda: window_step(trainer, sync_every), args.lever_seconds, args.min_iters,
                                         device, threads))
                undo()
            emit(section="levers", preset=preset, repeat=r, images_per_s={k: round(v[-1], 1) for k, v in rates.items()},
                 load=load())
        base = statistics.median(rates["default"])
        emit(section="levers", summary=preset, default_images_per_s=round(base, 1),
             effect_vs_default={k: round(statistics.median(v) / base, 2) for k, v in rates.items() if k != "default"},
             interop_threads=torch.get_num_interop_threads(), load=load())


def section_threads(args, device, found: dict) -> None:
    if device.type != "cpu":
        emit(section="threads", skipped="CPU thread counts only matter on a CPU")
        return
    store = RunStore(tempfile.mkdtemp(prefix="gan-threads-"))
    for preset in args.lever_presets.split(","):
        cfg = preset_config(preset, args, max_seconds=args.seconds, eval_every=200)  # 200: RunConfig's default
        own = Trainer(cfg).cpu_threads()
        alt = PROCESS_THREADS if own != PROCESS_THREADS else 1
        rates: dict[int, list[float]] = {own: [], alt: []}
        for r in range(args.repeats):
            for n in (own, alt):
                rates[n].append(store_run(store, cfg.replace(threads=n))["images_per_s"])
            emit(section="threads", preset=preset, repeat=r, images_per_s={k: round(v[-1], 1) for k, v in rates.items()},
                 load=load())
        emit(section="threads", summary=preset, auto_threads=own, auto_images_per_s=median(rates[own]),
             other_threads=alt, other_images_per_s=median(rates[alt]),
             auto_vs_other=round(statistics.median(rates[own]) / statistics.median(rates[alt]), 2), load=load())


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return "unknown"


def cli_train(out: str, *flags: str) -> subprocess.Popen:
    """`python -m gan_core train` (the default run, live evaluation off) in the background; its result is the last
    stdout line."""
    return subprocess.Popen([sys.executable, "-m", "gan_core", "train", "--out", out, "--quiet", "--eval-every", "0",
                             *flags], cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli_result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"gan_core train exited {proc.returncode}: {err.strip()[-500:]}")
    return json.loads(out.strip().splitlines()[-1])


def children_cpu() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every finished child, and the workers they waited for
    return usage.ru_utime + usage.ru_stime


def cpu_per_image(out: str, flags: list[str], steps: int) -> float:
    """CPU-seconds (all processes of the run, user + system) per image trained, start-up excluded (a 1-step run's
    CPU is subtracted). Unlike a rate it hardly moves with other users' load, and it bounds what an idle machine
    gives: with one core per process and no waiting, speed = processes / cpu_per_image."""
    used = {}
    for n in (1, 1 + steps):
        before = children_cpu()
        cli_result(cli_train(out, "--steps", str(n), "--max-seconds", "0", "--checkpoint-every", "100000",
                             "--sample-every", "100000", *flags))
        used[n] = children_cpu() - before
    return (used[1 + steps] - used[1]) / (steps * build_config().batch_size)  # the default's batch


def section_cores(args, device, found: dict) -> None:
    if device.type != "cpu":
        emit(section="cores", skipped="worker processes share a CPU's cores; a GPU run uses torchrun")
        return
    from gan_core.engine.device import amx_tiles
    from gan_core.engine.threads import usable_cores
    cores = usable_cores()
    out = tempfile.mkdtemp(prefix="gan-cores-")
    budget = ["--max-seconds", str(args.cores_seconds)]
    forced = f"{cores} workers (forced)"
    settings = {"one thread": ["--workers", "1", "--threads", "1"], "auto": [], forced: ["--workers", str(cores)]}
    rates: dict[str, list[float]] = {k: [] for k in [*settings, "two auto runs at once (sum)"]}
    cpu: dict[str, list[float]] = {"one thread": [], forced: []}
    chosen: list[int] = []
    for r in range(args.repeats):
        order = list(settings) if r % 2 == 0 else list(reversed(settings))
        for name in order:
            result = cli_result(cli_train(out, *budget, *settings[name]))
            rates[name].append(result["images_per_s"])
            if name == "auto":
                chosen.append(result.get("workers", 1))
        both = [cli_train(out, *budget, "--seed", str(seed)) for seed in (0, 1)]
        rates["two auto runs at once (sum)"].append(sum(cli_result(p)["images_per_s"] for p in both))
        for name in cpu:
            cpu[name].append(cpu_per_image(out, settings[name], args.cores_steps))
        emit(section="cores", repeat=r, images_per_s={k: round(v[-1], 1) for k, v in rates.items()},
             cpu_ms_per_image={k: round(1e3 * v[-1], 3) for k, v in cpu.items()}, auto_workers=chosen[-1], load=load())
    one = statistics.median(rates["one thread"])
    one_cpu, group_cpu = statistics.median(cpu["one thread"]), statistics.median(cpu[forced])
    emit(section="cores", summary="fast-mnist, python -m gan_core train", cpu=cpu_name(), cores=cores,
         amx=amx_tiles(), images_per_s={k: median(v) for k, v in rates.items()},
         vs_one_thread={k: round(statistics.median(v) / one, 2) for k, v in rates.items()},
         auto_workers_chosen=chosen, cpu_ms_per_image={k: round(1e3 * statistics.median(v), 3) for k, v in cpu.items()},
         idle_machine_bound_vs_one_thread=round(cores * one_cpu / group_cpu, 2),
         goal="auto >= 1.7x one thread on an idle 2-core machine", load=load())


def section_compile(args, device, found: dict) -> None:
    for preset in args.lever_presets.split(","):
        cfg = preset_config(preset, args)
        trainer = Trainer(cfg.replace(compile=True))
        threads = trainer.cpu_threads() if device.type == "cpu" else PROCESS_THREADS
        start = time.perf_counter()
        for _ in range(2 * cfg.g_every):  # both graphs (with and without a G update), forward and backward
            timed(lambda: window_step(trainer), 0, 1, device, threads)
        compile_s = time.perf_counter() - start
        gan = trainer.gan
        compiled, eager = (gan.G_fwd, gan.D_fwd), (gan.G, gan.D)
        rates = {"compiled": [], "eager": []}
        for r in range(args.repeats):
            for name, nets in (("compiled", compiled), ("eager", eager)):
                gan.G_fwd, gan.D_fwd = nets
                rates[name].append(timed(lambda: window_step(trainer), args.lever_seconds, args.min_iters, device, threads))
        fast, slow = statistics.median(rates["compiled"]), statistics.median(rates["eager"])
        emit(section="compile", summary=preset, compile_and_first_iterations_s=round(compile_s, 1), notes=trainer.notes,
             compiled_images_per_s=round(fast, 1), eager_images_per_s=round(slow, 1), effect=round(fast / slow, 2),
             pays_off_after_s=round(compile_s * fast / (fast - slow), 1) if fast > slow else None, load=load())


def section_readers(args, device, found: dict) -> None:
    store = RunStore(tempfile.mkdtemp(prefix="gan-readers-"))
    for preset in ("classic-mlp", "fast-mnist"):
        cfg = preset_config(preset, args, max_seconds=args.seconds)
        alone, read, ms = [], [], []
        for r in range(args.repeats):
            alone.append(store_run(store, cfg)["images_per_s"])
            run = store_run(store, cfg, readers=args.readers)
            read.append(run["images_per_s"])
            ms.append(run["reader_ms_mean"])
            emit(section="readers", preset=preset, repeat=r, alone_images_per_s=round(alone[-1], 1),
                 with_readers_images_per_s=round(read[-1], 1), reader_calls=run["reader_calls"],
                 reader_ms_mean=run["reader_ms_mean"], load=load())
        ratio = statistics.median(read) / statistics.median(alone)
        emit(section="readers", summary=preset, readers=args.readers, alone_images_per_s=median(alone),
             with_readers_images_per_s=median(read), ratio=round(ratio, 3), goal=">= 0.9", met=ratio >= 0.9,
             reader_ms_mean=median([m for m in ms if m is not None] or [0]), load=load())


def loss_curves(cfg, steps: int) -> tuple[Trainer, list[float], list[float], float]:
    trainer = Trainer(cfg)
    d, g = [], []
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_iteration()
        row = trainer.read_metrics(1.0, 1)
        d.append(row["d_loss"])
        if row["g_loss"] is not None:
            g.append(row["g_loss"])
    return trainer, d, g, time.perf_counter() - start


def smooth(xs: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x - (xs[i - window] if i >= window else 0.0)
        out.append(acc / min(i + 1, window))
    return out


def mean_abs_diff(a: list[float], b: list[float], window: int) -> float:
    sa, sb = smooth(a, window), smooth(b, window)
    n = min(len(sa), len(sb))
    return sum(abs(x - y) for x, y in zip(sa[:n], sb[:n])) / max(n, 1)


PRECISION_STEPS = {"fast-mnist": 1000, "classic-dcgan": 1200}  # iterations per run: digits in each (classic-dcgan updates G every 2nd)


def section_precision(args, device, found: dict) -> None:
    """Quality parity: each preset trained fp32 and `auto` for the same iterations over several seeds, scored by the
    evaluator; the loss curves' distance fp32↔auto beside fp32 seed 0↔seed 1 for scale."""
    from gan_core.engine import metrics
    from gan_core.engine.device import choose_precision
    from gan_core.models import image_size_for
    seeds = range(args.precision_seeds)
    for preset in [p.strip() for p in args.precision_presets.split(",") if p.strip()]:
        steps = args.precision_steps or PRECISION_STEPS.get(preset, 400)
        cfg = preset_config(preset, args, steps=steps, max_seconds=0.0)
        threads = Trainer(cfg).cpu_threads() if device.type == "cpu" else PROCESS_THREADS
        ev = metrics.get_evaluator(cfg.dataset, cfg.data_root)
        stats = metrics.real_stats(ev, image_size_for(cfg), cfg.channels or 1, cfg.data_root)
        z, labels = metrics.eval_noise(cfg, 1000)
        rows, curves = {"fp32": [], "auto": []}, {}
        for seed in seeds:
            for precision in rows:
                c = cfg.replace(seed=seed, precision=precision)
                trainer, d, g, seconds = on_own_thread(lambda c=c: loss_curves(c, steps), threads)
                r = metrics.evaluate_generator(trainer.gan.sampler, ev, stats, z, labels)
                curves[precision, seed] = (d, g)
                rows[precision].append(dict(fid=r.fid, modes=r.modes_covered, label_accuracy=r.label_accuracy,
                                            seconds=seconds))
                emit(section="precision", preset=preset, precision=precision, bf16_active=trainer.gan.bf16, seed=seed,
                     steps=steps, seconds=round(seconds, 1), fid=round(r.fid, 2), modes_covered=r.modes_covered,
                     label_accuracy=r.label_accuracy, confidence=round(r.confidence, 3), load=load())

        def med(precision, key):
            values = [row[key] for row in rows[precision] if row[key] is not None]
            return round(statistics.median(values), 3) if values else None
        w = args.smooth
        emit(section="precision", summary=preset, auto_is=choose_precision("auto", device).label, seeds=len(seeds),
             steps=steps, **{f"{key}_median_{p}": med(p, key) for key in ("fid", "modes", "label_accuracy", "seconds")
                             for p in rows},
             auto_speedup=round(med("fp32", "seconds") / med("auto", "seconds"), 2),
             d_loss_mad_auto_vs_fp32=round(mean_abs_diff(curves["fp32", 0][0], curves["auto", 0][0], w), 4),
             d_loss_mad_seed1_vs_seed0=round(mean_abs_diff(curves["fp32", 0][0], curves["fp32", 1][0], w), 4)
             if len(seeds) > 1 else None, load=load())


# ---------------------------------------------------------------------- time to quality
def budget_run(store: RunStore, cfg) -> dict:
    """Train `cfg` through RunStore (the real loop, its live evaluation included) and score its last checkpoint's
    sampler (EMA weights when on) with the evaluator trained on MNIST's 60k against real MNIST's statistics."""
    from gan_core.engine import metrics
    from gan_core.engine.checkpoint import load_generator
    run_id = store.start(cfg)
    status = store.wait(run_id)
    snap = store.snapshot(run_id)
    if status != "finished":
        raise SystemExit(f"run {run_id} ended {status}: {snap.message}")
    G, _, _ = load_generator(store.checkpoints(run_id)[-1])
    ev = metrics.get_evaluator("mnist", cfg.data_root)
    stats = metrics.real_stats(ev, 28, 1, cfg.data_root)
    z, labels = metrics.eval_noise(cfg, 1000)
    r = on_own_thread(lambda: metrics.evaluate_generator(G, ev, stats, z, labels), 1)
    return {"fd": r.fid, "modes": r.modes_covered, "steps": snap.step, "seconds": round(snap.elapsed, 1)}


def real_data_floor(root: str, draws: int) -> dict:
    """What the same score gives real digits: 1,000 of MNIST's 10k test images (never in the statistics, which come
    from the 60k) per draw. A generator cannot be expected below it; FD <= 5 sits close above it."""
    from gan_core.data import load_images, to_unit_range
    from gan_core.engine import metrics
    ev = metrics.get_evaluator("mnist", root)
    stats = metrics.real_stats(ev, 28, 1, root)
    test = load_images("mnist-embedded", root, 28, 1).images
    fds = []
    for draw in range(draws):
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(draw))[:1000]
        fds.append(metrics.measure(ev, stats, to_unit_range(test[pick])).fid)
    return spread(fds)


def spread(xs) -> dict:
    return {"median": round(statistics.median(xs), 2), "min": round(min(xs), 2), "max": round(max(xs), 2)}


def section_quality(args, device, found: dict) -> None:
    """Time to quality: the preset as a user runs it, for each budget (--quality-seconds) and seed, scored by the
    evaluator on MNIST's 60k (Fréchet distance over 1,000 samples, all ten classes asked for equally). With
    --quality-versus the same runs also go with those settings (e.g. '{"lr_decay": 0}', the constant rates of old),
    interleaved run by run so both see the same machine. Goals: FD <= 10 at 20 s, <= 5 at 60 s, and for every seed
    60 s no worse than 30 s. The steps each run made and the load sit beside each figure: on a shared machine a
    time budget buys fewer steps (benchmarks/step_budget.py scores the same way on step budgets, which a busy
    machine does not shorten)."""
    metrics_root = args.data_root
    budgets = [float(x) for x in args.quality_seconds.split(",") if x.strip()]
    variants = {"preset": {}}
    if args.quality_versus:
        variants["versus"] = json.loads(args.quality_versus)
    workers = None if args.quality_workers == "thread" else args.quality_workers
    store = RunStore(tempfile.mkdtemp(prefix="gan-quality-"), workers=workers)  # as the dashboard runs the preset
    found_fd: dict = {}
    emit(section="quality", real_data_floor=real_data_floor(metrics_root, args.quality_seeds), load=load())
    for seed in range(args.quality_seeds):
        for seconds in budgets:
            for name, changes in variants.items():
                cfg = build_config(args.quality_preset, max_seconds=seconds, seed=seed, device=args.device,
                                   data_root=metrics_root, **changes).validate()
                r = budget_run(store, cfg)
                found_fd[name, seconds, seed] = r["fd"]
                emit(section="quality", preset=args.quality_preset, settings=name, changes=changes, seed=seed,
                     budget_s=seconds, workers=args.quality_workers, fd=round(r["fd"], 2), modes=r["modes"],
                     steps=r["steps"], load=load())
    for name, changes in variants.items():
        table = {f"{s:g}s": spread([found_fd[name, s, seed] for seed in range(args.quality_seeds)]) for s in budgets}
        longer_no_worse = None
        if 30.0 in budgets and 60.0 in budgets:
            longer_no_worse = all(found_fd[name, 60.0, seed] <= found_fd[name, 30.0, seed]
                                  for seed in range(args.quality_seeds))
        met = {f"fd_at_{s:g}s<={goal}": table[f"{s:g}s"]["median"] <= goal for s, goal in ((20.0, 10), (60.0, 5))
               if f"{s:g}s" in table}
        emit(section="quality", summary=args.quality_preset, settings=name, changes=changes,
             seeds=args.quality_seeds, fd=table, **met, sixty_no_worse_than_thirty_every_seed=longer_no_worse,
             load=load())
    found["quality"] = found_fd


def run_scenario(section: str, script: str, *script_args: str) -> None:
    """A scenario script of its own (it needs a quiet process or a browser): its report on stderr, its SUMMARY lines
    as JSON here."""
    done = subprocess.run([sys.executable, str(HERE / script), *script_args], capture_output=True, text=True)
    sys.stderr.write(done.stdout + done.stderr)
    summaries = [line.removeprefix("SUMMARY ").strip() for line in done.stdout.splitlines() if line.startswith("SUMMARY")]
    if done.returncode or not summaries:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        emit(section=section, skipped=f"{script} exited {done.returncode}: {tail[0]}", load=load())
    for line in summaries:
        emit(section=section, summary=line, load=load())


def section_busy(args, device, found: dict) -> None:
    run_scenario("busy", "busy.py")


def section_dashboard(args, device, found: dict) -> None:
    run_scenario("dashboard", "sessions.py", "--vs-headless", "--sessions", "1", "--preset", "fast-mnist",
                 "--threads", "0", "--seconds", "30")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__[__doc__.index("    python"):__doc__.index("Every A/B")])
    p.add_argument("--sections", default=",".join(DEFAULT_SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    p.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda, mps")
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"),
                   help="torchvision MNIST root (default: ../shared/data)")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per measurement window (tutorial, readers)")
    p.add_argument("--lever-seconds", type=float, default=2.5, help="seconds per lever window")
    p.add_argument("--min-iters", type=int, default=4, help="at least this many iterations per window")
    p.add_argument("--repeats", type=int, default=3, help="alternating windows per setting (medians reported)")
    p.add_argument("--lever-presets", default="classic-mlp,classic-dcgan", help="presets for levers and compile")
    p.add_argument("--readers", type=int, default=4, help="reader threads in the readers section")
    p.add_argument("--cores-steps", type=int, default=300, help="steps of the CPU-per-image runs (cores section)")
    p.add_argument("--cores-seconds", type=float, default=25.0, help="seconds per run in the cores section (auto "
                   "starts worker processes only for runs of 20 s or more)")
    p.add_argument("--precision-steps", type=int, default=0,
                   help=f"iterations per run in the precision section (default per preset: {PRECISION_STEPS})")
    p.add_argument("--precision-presets", default="fast-mnist,classic-dcgan", help="presets the precision section trains")
    p.add_argument("--precision-seeds", type=int, default=3, help="seeds per preset and precision")
    p.add_argument("--smooth", type=int, default=25, help="moving-average window for the loss curves")
    p.add_argument("--quality-preset", default="fast-mnist", help="preset the quality section trains")
    p.add_argument("--quality-seconds", default="20,30,60", help="time budgets (seconds) the quality section trains")
    p.add_argument("--quality-seeds", type=int, default=3, help="seeds per budget in the quality section")
    p.add_argument("--quality-versus", default="",
                   help="JSON of settings the quality section also trains beside the preset, e.g. '{\"lr_decay\": 0}'")
    p.add_argument("--quality-workers", default="auto",
                   help="where the quality section's runs train: auto or N (a `train --workers` process of their own, "
                        "as the dashboard trains them), or thread (a thread of this process)")
    args = p.parse_args()
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        p.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    device = resolve_device(args.device)
    args.device = device.type
    one_intra_op_thread_here()  # measured work runs on threads of its own: see on_own_thread
    emit(torch=torch.__version__, device=str(device), cpu_count=os.cpu_count(), process_threads=PROCESS_THREADS,
         interop_threads=torch.get_num_interop_threads(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
         load=load(), sections=chosen)
    found: dict = {}
    for name in chosen:
        start = time.perf_counter()
        globals()[f"section_{name}"](args, device, found)
        emit(section=name, seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
