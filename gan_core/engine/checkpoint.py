"""Checkpoints as safetensors: G, D, EMA-G, optimiser states, fixed noise and RNG, with the config in the
metadata. Nothing is ever unpickled, so a checkpoint found online cannot run code on load."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .. import safe_io
from ..config import ConfigError, RunConfig
from ..errors import StudioError
from ..models import build_models
from ..models.fold_conv import use_fold_kernels
from .budget import check_model_budget

FORMAT = "gan-studio/1"
# Refuse bigger files before reading a byte: the largest preset (dcgan64 with EMA and Adam state) is ~100 MB,
# so 2 GiB is far above any real checkpoint and still well below what would exhaust memory.
MAX_CHECKPOINT_BYTES = 2 * 1024 ** 3
# Config fields that decide tensor shapes: a checkpoint only fits a run that agrees on all of them.
SHAPE_FIELDS = ("arch", "z_dim", "conditional", "g_hidden", "d_hidden", "g_features", "d_features", "d_norm",
                "spectral_norm", "image_size", "channels", "dataset", "task")


FORK_POINTS = 10  # a run of known length saves at least this many checkpoints (at most every 50 steps)


def checkpoint_interval(cfg) -> int:
    """Steps between checkpoints: checkpoint_every, or closer on a short run of known length, so that forking it
    has somewhere to start (a 300-step run with checkpoint_every 500 kept only its last)."""
    return min(cfg.checkpoint_every, max(50, cfg.steps // FORK_POINTS)) if cfg.steps else cfg.checkpoint_every


def checkpoints_to_drop(steps: list[int], keep: int) -> list[int]:
    """Which of a run's checkpoint steps to delete so `keep` remain, spread over the whole run rather than the last
    few (a fork from early on needs an early one): the newest always stays; each drop removes the checkpoint whose
    neighbours lie closest together."""
    steps, dropped = sorted(steps), []
    while len(steps) > keep:
        gaps = [(steps[i + 1] - (steps[i - 1] if i else 0), -i) for i in range(len(steps) - 1)]
        dropped.append(steps.pop(-min(gaps)[1]))
    return dropped


class CheckpointError(StudioError, ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong with it."""


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _module_tensors(prefix: str, module: torch.nn.Module) -> dict:
    return {f"{prefix}.{k}": _cpu(v) for k, v in module.state_dict().items()}


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, str]:
    sd = opt.state_dict()
    tensors = {f"{prefix}.{idx}.{k}": _cpu(v if torch.is_tensor(v) else torch.tensor(v))
               for idx, state in sd["state"].items() for k, v in state.items()}
    return tensors, json.dumps(sd["param_groups"])


def _restore_optimizer(opt, prefix: str, tensors: dict, groups_json: str) -> None:
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    groups = json.loads(groups_json)
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


class Resumed(NamedTuple):
    """Where a restored run stands: its step and training clock, and notes for its events."""
    step: int
    elapsed: float
    notes: list


def save_training_state(path: str | os.PathLike, gan, step: int, elapsed: float,
                        inside: str | os.PathLike | None = None) -> None:
    """Everything needed to resume a run exactly where it was, written atomically (temp file + rename).
    `inside`: the run folder; no link below it is followed (default: the checkpoint's own folder)."""
    tensors = {**_module_tensors("G", gan.G), **_module_tensors("D", gan.D)}
    if gan.G_ema is not None:
        tensors.update(_module_tensors("G_ema", gan.G_ema))
    opt_g, groups_g = _optimizer_tensors("opt_g", gan.opt_g)
    opt_d, groups_d = _optimizer_tensors("opt_d", gan.opt_d)
    tensors.update(opt_g)
    tensors.update(opt_d)
    tensors["fixed_z"] = _cpu(gan.fixed_z)
    if gan.fixed_y is not None:
        tensors["fixed_y"] = _cpu(gan.fixed_y)
    tensors["rng_state"] = _cpu(gan.rng.get_state())
    meta = {"format": FORMAT, "config": gan.cfg.to_json(), "step": str(step),
            "elapsed": f"{elapsed:.3f}", "opt_g_groups": groups_g, "opt_d_groups": groups_d,
            "channels": str(gan.channels), "num_classes": str(gan.num_classes)}
    path = Path(path)
    if inside is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # Serialised here, written by safe_io: a full disk is an OSError (errno 28) the trainer words as "disk full",
    # not a SafetensorError; no temp file is left taking space.
    safe_io.atomic_write(path, safetensors_bytes(tensors, metadata=meta), inside=inside)


def read_checkpoint(path: str | os.PathLike, max_bytes: int | None = None,
                    inside: str | os.PathLike | None = None) -> tuple[dict, dict]:
    """(tensors, metadata) of a GAN Studio checkpoint, or CheckpointError saying exactly why not. A regular file
    only (`inside`: the run folder, no link below it followed); its config is range-checked and its models'
    size budgeted before a tensor is read."""
    max_bytes = MAX_CHECKPOINT_BYTES if max_bytes is None else max_bytes
    path = Path(path)
    name = path.name
    try:
        fd = safe_io.open_fd(path, os.O_RDONLY, inside=inside)
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such checkpoint file ({path})") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{name}: {str(e).split(': ', 1)[-1] if isinstance(e, ValueError) else e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise CheckpointError(f"{name}: {size / 2**20:.1f} MiB is larger than the {max_bytes / 2**20:.1f} MiB limit "
                                  f"for checkpoints (MAX_CHECKPOINT_BYTES)")
        head = f.read(9)
        # the same open file from here on (Linux): swapping the name for a link now changes nothing
        source = f"/proc/self/fd/{f.fileno()}" if os.path.exists(f"/proc/self/fd/{f.fileno()}") else str(path)
        return _read_safetensors(source, name, head, size)


def _read_safetensors(source: str, name: str, head: bytes, size: int) -> tuple[dict, dict]:
    # safetensors: an 8-byte header length, then the JSON header. A header length whose first byte is 0x80 (or
    # 'PK') is common, so a file only counts as a pickle / zip when it does not also look like safetensors.
    looks_safetensors = len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") <= size - 8
    if not looks_safetensors and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):
        raise CheckpointError(f"{name}: this is a PyTorch pickle (.pth/.pt). GAN Studio only loads .safetensors files, "
                              f"because unpickling a file can run any code it contains")
    if len(head) < 8 or int.from_bytes(head[:8], "little") > size - 8:
        raise CheckpointError(f"{name}: truncated or not a safetensors file ({size} bytes)")
    try:
        with safe_open(source, framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{name}: a safetensors file, but not a GAN Studio checkpoint (format "
                                      f"{str(meta.get('format'))[:40]!r})")
            cfg = checkpoint_config(meta, name)
            try:
                check_model_budget(cfg)
            except ConfigError as e:
                raise CheckpointError(f"{name}: {next(iter(e.problems.values()))}") from None
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{name}: not a readable safetensors file ({str(e)[:200]})") from None
    return tensors, meta


def checkpoint_config(meta: dict, name: str = "checkpoint") -> RunConfig:
    """The run config stored in a checkpoint, through the same bounded, range-checked loader as any config."""
    try:
        return RunConfig.from_json(meta["config"], "its config")
    except (KeyError, ConfigError) as e:
        raise CheckpointError(f"{name}: its stored config is unusable ({str(e)[:300]})") from None


def config_mismatches(saved: RunConfig, wanted: RunConfig) -> list[str]:
    return [f"{f}: checkpoint has {getattr(saved, f)!r}, this run uses {getattr(wanted, f)!r}"
            for f in SHAPE_FIELDS if getattr(saved, f) != getattr(wanted, f)]


def _load_module(module, prefix: str, tensors: dict, name: str) -> None:
    sd = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1:3] or [str(e)]
        raise CheckpointError(f"{name}: {prefix} weights do not fit this architecture ({' '.join(s.strip() for s in first)})") from None


def _damaged(name: str, e: Exception) -> CheckpointError:
    what = f"{e.args[0]!r} is missing" if isinstance(e, KeyError) else (str(e).splitlines() or [type(e).__name__])[0]
    return CheckpointError(f"{name}: damaged checkpoint ({what})")


def _check_sound(tensors: dict, gan, name: str) -> None:
    """Refuse what would only fail later inside the training thread: non-finite weights, wrong-shaped
    fixed noise or optimiser state (a hand-edited or damaged file that is still valid safetensors)."""
    for key, t in tensors.items():
        if key.split(".", 1)[0] in ("G", "D", "G_ema") and t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{name}: its weights contain NaN/Inf ({key}); resume from an earlier checkpoint")
    if tuple(tensors["fixed_z"].shape) != tuple(gan.fixed_z.shape):
        raise CheckpointError(f"{name}: damaged checkpoint (fixed_z has shape {tuple(tensors['fixed_z'].shape)}, "
                              f"this run needs {tuple(gan.fixed_z.shape)})")
    for prefix, opt in (("opt_g", gan.opt_g), ("opt_d", gan.opt_d)):
        params = [p for g in opt.param_groups for p in g["params"]]
        for key, t in tensors.items():
            if key.startswith(prefix + ".") and t.ndim:
                idx = int(key[len(prefix) + 1:].split(".", 1)[0])
                if idx >= len(params) or t.shape != params[idx].shape:
                    raise CheckpointError(f"{name}: damaged checkpoint (optimiser state {key} does not fit its parameter)")


def load_training_state(path, gan) -> Resumed:
    """Restore a GAN built from the same config; refuses with every mismatching field named."""
    tensors, meta = read_checkpoint(path)
    name = Path(path).name
    saved = checkpoint_config(meta, name)
    problems = config_mismatches(saved, gan.cfg)
    if problems:
        raise CheckpointError(f"{name} does not match this run: " + "; ".join(problems))
    try:
        return _restore_training_state(gan, tensors, meta, name)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise _damaged(name, e) from None


def _restore_training_state(gan, tensors: dict, meta: dict, name: str) -> Resumed:
    _load_module(gan.G, "G", tensors, name)
    _load_module(gan.D, "D", tensors, name)
    if gan.G_ema is not None:
        _load_module(gan.G_ema, "G_ema" if any(k.startswith("G_ema.") for k in tensors) else "G", tensors, name)
    _check_sound(tensors, gan, name)
    _restore_optimizer(gan.opt_g, "opt_g", tensors, meta["opt_g_groups"])
    _restore_optimizer(gan.opt_d, "opt_d", tensors, meta["opt_d_groups"])
    gan.fixed_z = tensors["fixed_z"].to(gan.device)
    if "fixed_y" in tensors:
        gan.fixed_y = tensors["fixed_y"].to(gan.device)
    notes = []
    try:
        gan.rng.set_state(tensors["rng_state"])
    except (RuntimeError, KeyError, TypeError):
        notes.append("resumed on a different device: the random stream restarts from a new state")
    step, elapsed = int(meta["step"]), float(meta["elapsed"])
    if step < 0 or not 0 <= elapsed < float("inf"):
        raise CheckpointError(f"{name}: damaged checkpoint (step {meta['step']}, elapsed {meta['elapsed']})")
    return Resumed(step, elapsed, notes)


def load_generator(path, device="cpu", prefer_ema: bool = True, build=None):
    """(G in eval mode, its RunConfig, metadata) from a checkpoint, built from the checkpoint's own config
    (by `build(cfg, channels, num_classes)`: build_models, or a restorer's builder)."""
    tensors, meta = read_checkpoint(path)
    name = Path(path).name
    cfg = checkpoint_config(meta, name)
    if build is None and cfg.task != "generate":  # not a "weights do not fit" wall of missing keys
        raise CheckpointError(f"{name}: a checkpoint of a {cfg.task} restorer, which maps a damaged image to a repaired "
                              f"one; it has no noise z to sample or explore (use it on the Restore page)")
    try:
        G, _ = (build or build_models)(cfg, int(meta.get("channels", 1)), int(meta.get("num_classes", 0)))
        int(meta.get("step", 0))
    except (ValueError, TypeError, RuntimeError) as e:
        raise _damaged(name, e) from None
    prefix = "G_ema" if prefer_ema and any(k.startswith("G_ema.") for k in tensors) else "G"
    _load_module(G, prefix, tensors, name)
    if not all(torch.isfinite(p).all() for p in G.parameters()):
        raise CheckpointError(f"{name}: its generator weights contain NaN/Inf; use an earlier checkpoint")
    G.to(device).eval()
    use_fold_kernels(G)  # the kernels the run drew its grid with, so a checkpoint draws exactly that grid
    return G, cfg, meta
