"""Checkpoints as safetensors: G, D, EMA-G, optimiser states, fixed noise and RNG, with the config in the
metadata. Nothing is ever unpickled, so a checkpoint found online cannot run code on load."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, RunConfig
from .models import build_models

FORMAT = "gan-studio/1"
MAX_CHECKPOINT_BYTES = 2 * 1024 ** 3
# Config fields that decide tensor shapes: a checkpoint only fits a run that agrees on all of them.
SHAPE_FIELDS = ("arch", "z_dim", "conditional", "g_hidden", "d_hidden", "g_features", "d_features", "d_norm",
                "spectral_norm", "image_size", "channels", "dataset")


class CheckpointError(ValueError):
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


def save_training_state(path: str | os.PathLike, trainer) -> None:
    """Everything needed to resume a run exactly where it was, written atomically (temp file + rename)."""
    tensors = {**_module_tensors("G", trainer.G), **_module_tensors("D", trainer.D)}
    if trainer.G_ema is not None:
        tensors.update(_module_tensors("G_ema", trainer.G_ema))
    opt_g, groups_g = _optimizer_tensors("opt_g", trainer.opt_g)
    opt_d, groups_d = _optimizer_tensors("opt_d", trainer.opt_d)
    tensors.update(opt_g)
    tensors.update(opt_d)
    tensors["fixed_z"] = _cpu(trainer.fixed_z)
    if trainer.fixed_y is not None:
        tensors["fixed_y"] = _cpu(trainer.fixed_y)
    tensors["rng_state"] = _cpu(trainer.rng.get_state())
    meta = {"format": FORMAT, "config": trainer.cfg.to_json(), "step": str(trainer.step),
            "elapsed": f"{trainer.elapsed:.3f}", "opt_g_groups": groups_g, "opt_d_groups": groups_d,
            "channels": str(trainer.channels), "num_classes": str(trainer.num_classes)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike, max_bytes: int = MAX_CHECKPOINT_BYTES) -> tuple[dict, dict]:
    """(tensors, metadata) of a GAN Studio checkpoint, or CheckpointError saying exactly why not."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such checkpoint file ({path})")
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{name}: {size / 2**20:.0f} MiB is larger than the {max_bytes / 2**20:.0f} MiB limit for checkpoints")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise CheckpointError(f"{name}: this is a PyTorch pickle (.pth/.pt). GAN Studio only loads .safetensors files, "
                              f"because unpickling a file can run any code it contains")
    if len(head) < 8 or int.from_bytes(head, "little") > size - 8:
        raise CheckpointError(f"{name}: truncated or not a safetensors file ({size} bytes)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{name}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{name}: a safetensors file, but not a GAN Studio checkpoint (format {meta.get('format')!r})")
    return tensors, meta


def checkpoint_config(meta: dict, name: str = "checkpoint") -> RunConfig:
    try:
        return RunConfig.from_json(meta["config"])
    except (KeyError, ConfigError) as e:
        raise CheckpointError(f"{name}: its stored config is unusable ({e})") from None


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


def load_training_state(path, trainer) -> None:
    """Restore a trainer built from the same config; refuses with every mismatching field named."""
    tensors, meta = read_checkpoint(path)
    name = Path(path).name
    saved = checkpoint_config(meta, name)
    problems = config_mismatches(saved, trainer.cfg)
    if problems:
        raise CheckpointError(f"{name} does not match this run: " + "; ".join(problems))
    _load_module(trainer.G, "G", tensors, name)
    _load_module(trainer.D, "D", tensors, name)
    if trainer.G_ema is not None:
        _load_module(trainer.G_ema, "G_ema" if any(k.startswith("G_ema.") for k in tensors) else "G", tensors, name)
    _restore_optimizer(trainer.opt_g, "opt_g", tensors, meta["opt_g_groups"])
    _restore_optimizer(trainer.opt_d, "opt_d", tensors, meta["opt_d_groups"])
    trainer.fixed_z = tensors["fixed_z"].to(trainer.device)
    if "fixed_y" in tensors:
        trainer.fixed_y = tensors["fixed_y"].to(trainer.device)
    try:
        trainer.rng.set_state(tensors["rng_state"])
    except (RuntimeError, KeyError):
        trainer.notes.append("resumed on a different device: the random stream restarts from a new state")
    trainer.step = int(meta["step"])
    trainer.elapsed = float(meta["elapsed"])


def load_generator(path, device="cpu", prefer_ema: bool = True):
    """(G in eval mode, its RunConfig, metadata) from a checkpoint, built from the checkpoint's own config."""
    tensors, meta = read_checkpoint(path)
    name = Path(path).name
    cfg = checkpoint_config(meta, name)
    G, _ = build_models(cfg, int(meta.get("channels", 1)), int(meta.get("num_classes", 0)))
    prefix = "G_ema" if prefer_ema and any(k.startswith("G_ema.") for k in tensors) else "G"
    _load_module(G, prefix, tensors, name)
    G.to(device).eval()
    return G, cfg, meta
