"""How a `train` command becomes a run: its config from the flags (or a run folder for --resume / --fix-of), the
progress bar, the result line, and the processes that train it (one, local --workers, or a torchrun rank)."""
from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

from .config import ConfigError, RunConfig
from .errors import StudioError
from .presets import build_config


class UsageError(StudioError):
    pass


def _overrides(args) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(RunConfig)
            if f.name != "preset" and getattr(args, f.name, None) is not None}


def _train_config(args) -> RunConfig:
    overrides = _overrides(args)
    if args.config is not None:  # `--config ""` is a mistake to report, not a request for the defaults
        try:
            base = RunConfig.from_file(args.config).to_dict()
        except ConfigError as e:
            if set(e.problems) == {"config"}:  # the file itself (missing, a FIFO, too big, not JSON): one line
                raise UsageError(f"--config: {e.problems['config']}") from None
            raise
        cfg = RunConfig.from_dict({**base, **overrides})
    else:
        cfg = build_config(args.preset, **overrides)
    return cfg.validate()


def _follow(store, run_id: str, quiet: bool) -> None:
    """Show a tqdm bar until the run's thread ends; Ctrl-C stops the run cleanly (a final checkpoint is written)."""
    from tqdm import tqdm
    snap = store.snapshot(run_id)
    by_time = not snap.total_steps
    total = snap.max_seconds if by_time else snap.total_steps
    bar = tqdm(total=round(total), unit="s" if by_time else "step", disable=quiet, file=sys.stderr, dynamic_ncols=True)
    try:
        while store.wait(run_id, timeout=0.5) in ("starting", "running", "paused"):
            snap = store.snapshot(run_id, max_points=2)
            bar.n = min(round(snap.elapsed if by_time else snap.step), bar.total)
            if len(snap.metrics):
                last = snap.metrics.iloc[-1]
                bar.set_postfix(step=snap.step, d=f"{last.d_loss:.3f}", g=f"{last.g_loss:.3f}", refresh=False)
            bar.refresh()
    except KeyboardInterrupt:
        print("stopping… (a final checkpoint is being written)", file=sys.stderr)
        store.stop(run_id)
        store.wait(run_id)
    finally:
        bar.close()


def _fix_config(run_dir: Path, overrides: dict) -> RunConfig:
    """The fixed run's config: the diagnosis' fix on the run's config (health.fix_config), then the flags."""
    from .insight.evaluate import diagnose_run
    from .insight.diagnosis import fix_config
    finding = diagnose_run(run_dir)
    if finding.fix is None:
        raise UsageError(f"--fix-of {run_dir.name}: its diagnosis ({finding.title}) suggests no fix")
    cfg = fix_config(RunConfig.from_file(run_dir / "config.json"), finding)
    if "max_seconds" in overrides and "steps" not in overrides:
        overrides = {**overrides, "steps": 0}  # as with --preset: an explicit time limit replaces the step count
    return cfg.replace(**overrides).validate()


def _resume_dir(value: str) -> Path:
    return _run_dir_arg(value, "--resume")


def _workers(args, free, claims) -> int:
    """How many processes train this run (--workers; threads.local_workers for auto, beside what the other runs of
    this machine have claimed), claimed in `claims`. A number that cannot work (not dividing the batch, a GPU run, a
    fork) is refused in one line; auto quietly falls back to 1."""
    from .engine.device import resolve_device
    from .engine.threads import MIN_GROUP_SECONDS, MIN_GROUP_STEPS, local_workers, usable_cores
    auto = args.workers.strip().lower() == "auto"
    if not auto:
        try:
            asked = int(args.workers)
        except ValueError:
            raise UsageError(f"--workers must be a whole number or auto, got {args.workers!r}") from None
        if not 1 <= asked <= 64:
            raise UsageError(f"--workers must be between 1 and 64, got {asked}")
        if asked == 1:
            return 1
    if args.fork is not None or args.fix_of is not None:
        if auto:
            return 1
        raise UsageError("--workers: a fork or a fix trains in one process; start it with --workers 1, then --resume "
                         "it with more")
    cfg = _resume_config(args) if args.resume is not None else _train_config(args)
    cpu_images = resolve_device(cfg.device).type == "cpu" and not cfg.is_2d
    if auto:
        if not cpu_images or cfg.task != "generate":
            return 1
        long_enough = (not cfg.max_seconds or cfg.max_seconds >= MIN_GROUP_SECONDS) and \
            (not cfg.steps or cfg.steps >= MIN_GROUP_STEPS)
        with claims.deciding():  # two runs started together decide one after the other
            now = free.now()
            cores = usable_cores()
            workers = local_workers(cfg.batch_size, cores, None if now is None else min(now, cores - claims.others()),
                                    long_enough)
            claims.claim(workers)
    else:
        if not cpu_images:
            raise UsageError("--workers is for image runs on a CPU; on GPUs use torchrun --nproc_per_node N (README: "
                             "Scaling out)")
        if cfg.batch_size % asked:
            raise UsageError(f"--workers {asked} must divide the batch size {cfg.batch_size} (each worker takes an "
                             f"equal share of every batch)")
        workers = asked
        claims.claim(workers)
    if workers > 1:  # what a lone run would refuse, refused here before a worker starts (the data stays cached)
        from .engine.budget import check_model_budget
        from .data import dataset_info, load_images
        from .models import image_size_for
        check_model_budget(cfg)
        load_images(cfg.dataset, cfg.data_root, image_size_for(cfg), cfg.channels or dataset_info(cfg.dataset).channels,
                    resolve_device(cfg.device))
    return workers


def _resume_config(args) -> RunConfig:
    """The config a --resume would train with (the run's own, with the flags' changes)."""
    from gan_core.runs import files as rf
    run_dir = _resume_dir(args.resume)
    try:
        saved = rf.load_json(run_dir / "config.json", run_dir)
    except (OSError, ValueError) as e:
        raise UsageError(f"--resume {args.resume}: config.json is unreadable ({e})") from None
    return RunConfig.from_dict({**saved, **_overrides(args)}).validate()


def _run_dir_arg(value: str, flag: str) -> Path:
    """The run folder a --resume/--fork flag names, or one line saying why it is not one."""
    if not value.strip():
        raise UsageError(f"{flag} needs a run folder, e.g. {flag} runs/<run-id> (got an empty name)")
    run_dir = Path(value).resolve()
    if not (run_dir / "config.json").is_file():
        raise UsageError(f"{flag} {value}: not a run folder (no config.json)")
    return run_dir


def _report(store, run_id: str, ranks: int = 1, shared_batch: bool = False) -> int:
    """The result line (stdout's last line) and the exit code: 0 for finished or stopped runs. `shared_batch`: the
    ranks split each batch (--workers), else each trained a batch of its own (torchrun)."""
    snap = store.snapshot(run_id)
    cfg = snap.config
    images = snap.step * cfg.batch_size * cfg.n_critic * (1 if shared_batch else ranks)
    result = {"run_dir": str(store.run_dir(run_id)), "status": snap.status, "steps": snap.step,
              "seconds": round(snap.elapsed, 2), "images_per_s": round(images / snap.elapsed, 1) if snap.elapsed else 0.0,
              "precision": snap.precision}
    if ranks > 1:
        result["ranks"] = ranks
    if shared_batch:
        result["workers"] = ranks
    if snap.status in ("failed", "diverged"):
        print(f"error: run {snap.status}: {snap.message}", file=sys.stderr)
    print(json.dumps(result))
    return 0 if snap.status in ("finished", "stopped") else 1


# ---------------------------------------------------------------------- torchrun (see distributed.py)
def _distributed_plan(args) -> dict:
    """Rank 0's decision for every rank: the validated config and, for --resume, the folder and checkpoint.
    Raises (on rank 0 only) whatever a lone `train` would refuse."""
    from .engine.budget import check_model_budget
    from .engine.checkpoint import CheckpointError
    from .runs import files as rf
    if args.resume is None:
        cfg = _train_config(args)
        check_model_budget(cfg)
        return {"config": cfg.to_json(), "resume": None, "checkpoint": None}
    run_dir = _resume_dir(args.resume)
    if rf.writer_alive(run_dir):
        raise rf.RunBusy(f"run {run_dir.name} is already being trained by another process (see its writer.lock)")
    checkpoints = rf.list_checkpoints(run_dir)
    if not checkpoints:
        raise CheckpointError(f"run {run_dir.name} has no checkpoint to resume from")
    cfg = _resume_config(args)
    check_model_budget(cfg)
    return {"config": cfg.to_json(), "resume": str(run_dir), "checkpoint": checkpoints[-1].name}


def _prepare_rank(plan: dict) -> str | None:
    """What could stop this rank from training the plan (its GPU, the dataset, the checkpoint file), as one
    line, or None. The dataset is loaded here, into the per-process cache the trainer reads from."""
    from .data import dataset_info, load_images
    from .engine import distributed
    from .engine.device import resolve_device
    from .models import image_size_for
    try:
        cfg = RunConfig.from_json(plan["config"])
        device = distributed.local_device(resolve_device(cfg.device))
        if not cfg.is_2d:
            load_images(cfg.dataset, cfg.data_root, image_size_for(cfg), cfg.channels or dataset_info(cfg.dataset).channels,
                        device)
        if plan["checkpoint"] and not (Path(plan["resume"]) / "checkpoints" / plan["checkpoint"]).is_file():
            return f"{plan['resume']}/checkpoints/{plan['checkpoint']} is not readable here (multi-node resume needs " \
                   f"the runs folder at the same path on every node)"
    except Exception as e:  # DatasetError, ValueError (device), ConfigError: reported by rank 0 for everyone
        return f"{e.args[0] if e.args else type(e).__name__}"
    return None


def _train_distributed(args, group_store=None) -> int:
    """One rank of a torchrun launch. Rank 0 plans the run and trains it through the store like any run (run
    folder, progress bar, result line); the other ranks train the same run in lockstep and write nothing.
    Every refusal happens on all ranks together, before any of them builds a model."""
    import signal

    from .engine import distributed
    from .runs.store import RunStore
    ctx = distributed.init_from_env(group_store)
    try:
        plan = None
        if ctx.is_main:
            try:
                plan = _distributed_plan(args)
            finally:
                ctx.share(plan)  # None: rank 0 refused (its error is raised here), every rank stops
        else:
            plan = ctx.share(None)
        # A refusal is rank 0's to report (one line, exit code 2). The other ranks leave quietly with 0: a non-zero
        # exit there would make torchrun stop rank 0 before it has said why.
        if plan is None:
            return 0
        error = ctx.node_first(lambda: _prepare_rank(plan))
        if error:
            if ctx.is_main:
                raise UsageError(error)
            return 0
        cfg = RunConfig.from_json(plan["config"])
        if not ctx.is_main:
            from .runs.trainers import make_trainer
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # rank 0 decides when to stop, for every rank at once
            trainer = make_trainer(cfg)
            if plan["checkpoint"]:
                trainer.resume_from(Path(plan["resume"]) / "checkpoints" / plan["checkpoint"])
            trainer.run()
            return 0 if trainer.status in ("finished", "stopped") else 1
        if plan["resume"]:
            store, run_id = RunStore(Path(plan["resume"]).parent), Path(plan["resume"]).name
            store.continue_run(run_id, **_overrides(args))
        else:
            store = RunStore(args.out)
            run_id = store.start(cfg)
        ranks = f"{ctx.world_size} worker processes" if ctx.split_batch else f"{ctx.world_size} ranks"
        print(f"run folder: {store.run_dir(run_id)} ({ranks})", file=sys.stderr)

        def stop_once(signum, frame):  # torchrun forwards Ctrl-C once; the run stops at its next log step
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("stopping… (every rank stops at the next log step; a final checkpoint is being written)", file=sys.stderr)
            store.stop(run_id)

        signal.signal(signal.SIGINT, stop_once)
        _follow(store, run_id, args.quiet)
        return _report(store, run_id, ranks=ctx.world_size, shared_batch=ctx.split_batch)
    finally:
        distributed.shutdown()
