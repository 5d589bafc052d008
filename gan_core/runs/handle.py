"""A run by its folder: which checkpoint, and its generator or restorer loaded from it."""
from __future__ import annotations

from pathlib import Path

from ..engine.checkpoint import CheckpointError, load_generator
from ..restore.restorer import RestoreError, Restorer
from . import files as rf


def run_checkpoint(run_dir: str | Path, checkpoint: str | None = None) -> Path:
    """The checkpoint file to use: `checkpoint` (a name inside the run) or the newest."""
    run_dir = Path(run_dir)
    ckpts = rf.list_checkpoints(run_dir)
    if checkpoint:
        names = {p.name: p for p in ckpts}
        if checkpoint not in names:
            raise CheckpointError(f"{checkpoint}: not a checkpoint of run {run_dir.name}")
        return names[checkpoint]
    if not ckpts:
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir}: no such run folder")
        raise CheckpointError(f"run {run_dir.name} has no checkpoint yet (one is written every checkpoint_every steps)")
    return ckpts[-1]


def load_uploaded_generator(data: bytes, name: str = "upload", device="cpu"):
    """(G, RunConfig, step) from the bytes of an uploaded checkpoint, through the same checks as any load. The
    temp file gets a fixed name (an upload's own may be 300 characters long, or anything); messages use `name`."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.safetensors"
        path.write_bytes(data)
        try:
            G, cfg, meta = load_generator(path, device)
        except CheckpointError as e:
            shown = Path(name).name[:60] + ("…" if len(Path(name).name) > 60 else "")
            raise CheckpointError(str(e).replace(path.name, shown, 1)) from None
    return G, cfg, int(meta.get("step", 0))


def load_run_generator(run_dir, checkpoint: str | None = None, device="cpu"):
    """(G, RunConfig, step) from a run folder's newest (or named) checkpoint."""
    G, cfg, meta = load_generator(run_checkpoint(run_dir, checkpoint), device)
    return G, cfg, int(meta.get("step", 0))


def load_restorer(run_dir, checkpoint: str | None = None) -> Restorer:
    """A run folder → what restores with it; RestoreError for 2-D runs and folders that are not runs."""
    from ..config import ConfigError, RunConfig
    from ..data import dataset_info
    from ..models import image_size_for
    run_dir = Path(run_dir)
    config = run_dir / "config.json"
    if not config.is_file():
        raise RestoreError(f"{run_dir}: not a run folder (no config.json)")
    try:
        cfg = RunConfig.from_file(config)  # the one bounded loader: regular file, size cap, no link followed
    except ConfigError as e:
        raise RestoreError(f"{config}: unreadable run config ({e})") from None
    if cfg.is_2d:
        raise RestoreError(f"run {run_dir.name} trains on 2-D points ({cfg.dataset}); restoring needs an image run")
    try:
        if cfg.task == "generate":
            G, cfg, step = load_run_generator(run_dir, checkpoint)
        else:
            from ..restore.nets import build_restorer
            G, cfg, meta = load_generator(run_checkpoint(run_dir, checkpoint), build=build_restorer)
            step = int(meta.get("step", 0))
    except CheckpointError as e:
        raise RestoreError(str(e)) from None
    channels = cfg.channels or dataset_info(cfg.dataset).channels
    method = "prior" if cfg.task == "generate" else "trained"
    return Restorer(method, G, cfg, channels, image_size_for(cfg), step, run_dir.name)
