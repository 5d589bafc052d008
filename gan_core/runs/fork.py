"""Fork from here: a new run that starts from a run's checkpoint at (or just before) a chosen step, with changed
hyperparameters. The child records its parent and fork step in fork.json, so Compare can overlay the two from
the fork point on. The parent is never touched."""
from __future__ import annotations

import json
from pathlib import Path

from ..config import ConfigError, RunConfig
from ..engine.checkpoint import CheckpointError
from . import files as rf
from .timeline import StepError, at_or_before

FORK_FILE = "fork.json"
KEPT = {"optimizer": "a fork continues the parent's optimiser state, so it keeps its optimiser; start a new run to "
                     "change it"}


def checkpoint_step(name: str) -> int:
    """The step of a checkpoint file name (step_00001405.safetensors → 1405)."""
    return int(Path(name).name.split(".")[0][5:])


def checkpoint_steps(run_dir: Path) -> dict[int, Path]:
    return {checkpoint_step(p.name): p for p in rf.list_checkpoints(Path(run_dir))}


def forkable_step(checkpoint_names: list[str], wanted: int) -> int | None:
    """The step a fork at `wanted` really starts from (its newest checkpoint at or before it), or None when the
    run has no checkpoint that early: what Monitor offers is exactly what fork_run will do."""
    return at_or_before(sorted(checkpoint_step(n) for n in checkpoint_names), int(wanted))


def fork_point(run_dir: Path, at_step: int | None = None) -> tuple[int, Path]:
    """(step, checkpoint file) a fork at `at_step` starts from: the newest checkpoint at or before it (default:
    the newest). CheckpointError when the run has none; StepError when `at_step` is outside the run."""
    run_dir = Path(run_dir)
    saved = checkpoint_steps(run_dir)
    if not saved:
        raise CheckpointError(f"run {run_dir.name} has no checkpoint to fork from (one is written every "
                              f"checkpoint_every steps and at the end of a run)")
    status = rf.read_json(run_dir / "status.json", run_dir) or {}
    last = max(int(status.get("step") or 0), max(saved))
    step = max(saved) if at_step is None else at_or_before(sorted(saved), _in_range(at_step, last, run_dir.name))
    if step is None:
        raise CheckpointError(f"run {run_dir.name} has no checkpoint at or before step {at_step}; its first is at "
                              f"step {min(saved)}")
    return step, saved[step]


def _in_range(step, last: int, name: str) -> int:
    from .timeline import check_step
    return check_step(step, last, f"run {name}")


def fork_run(store, run_id: str, at_step: int | None = None, **changes) -> str:
    """Start the child run in `store` (the parent's folder by default) and return its id. Refuses, before
    anything is created, with CheckpointError / StepError / ConfigError (each one line)."""
    parent_dir = store.run_dir(run_id)
    step, checkpoint = fork_point(parent_dir, at_step)
    parent = RunConfig.from_dict(rf.read_json(parent_dir / "config.json", parent_dir) or {})
    bad = {k: v for k, v in KEPT.items() if k in changes and changes[k] != getattr(parent, k)}
    if bad:
        raise ConfigError(bad)
    cfg = RunConfig.from_dict({**parent.to_dict(), **changes}).validate()
    changed = {k: v for k, v in cfg.to_dict().items() if v != getattr(parent, k)}

    def prepare(trainer) -> None:
        trainer.resume_from(checkpoint)
        for opt, lr in ((trainer.gan.opt_g, cfg.lr_g), (trainer.gan.opt_d, cfg.lr_d)):  # the new settings win
            for group in opt.param_groups:
                group["lr"] = lr
                if "betas" in group:
                    group["betas"] = (cfg.beta1, cfg.beta2)
                if "momentum" in group:
                    group["momentum"] = cfg.beta1
        if trainer.done():
            raise ConfigError({"steps": f"the fork starts at step {trainer.step}, where run {run_id} ends; raise steps "
                                        f"(or max_seconds) to train further"})
        trainer.notes.insert(0, f"forked from {run_id} at step {step} ({checkpoint.name}); changed: "
                                f"{', '.join(f'{k}={v}' for k, v in changed.items()) or 'nothing'}")

    child = store.start(cfg, prepare=prepare,
                        extra_files={FORK_FILE: json.dumps({"parent": run_id, "parent_dir": str(parent_dir),
                                                            "fork_step": step, "requested_step": at_step,
                                                            "checkpoint": checkpoint.name, "changed": changed},
                                                           indent=1)})
    return child


def fork_info(run_dir) -> dict | None:
    """What fork.json says about a run (parent, fork_step, changed), or None for a run that is not a fork."""
    info = rf.read_json(Path(run_dir) / FORK_FILE, Path(run_dir))
    if not isinstance(info, dict) or not isinstance(info.get("parent"), str) or isinstance(info.get("fork_step"), bool) \
            or not isinstance(info.get("fork_step"), int) or not isinstance(info.get("changed", {}), dict):
        return None  # not a fork, or a fork.json this version did not write: no overlay rather than a crash
    return info


__all__ = ["FORK_FILE", "StepError", "checkpoint_step", "fork_info", "fork_point", "fork_run", "forkable_step"]
