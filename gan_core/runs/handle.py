"""A run by its folder: which checkpoint, its generator or restorer loaded from it, and RunHandle, the one object
pages and the CLI reach a run through."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from ..engine.checkpoint import CheckpointError, load_generator
from ..restore.restorer import RestoreError, Restorer
from ..tasks import TASKS
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
        if not TASKS[cfg.task].restores:
            G, cfg, step = load_run_generator(run_dir, checkpoint)
        else:
            from ..restore.nets import build_restorer
            G, cfg, meta = load_generator(run_checkpoint(run_dir, checkpoint), build=build_restorer)
            step = int(meta.get("step", 0))
    except CheckpointError as e:
        raise RestoreError(str(e)) from None
    channels = cfg.channels or dataset_info(cfg.dataset).channels
    method = "trained" if TASKS[cfg.task].restores else "prior"
    return Restorer(method, G, cfg, channels, image_size_for(cfg), step, run_dir.name)


_LOADED: OrderedDict = OrderedDict()  # (what, checkpoint file, its mtime and size, device) -> loaded nets
_LOADED_MAX = 6
_LOADED_LOCK = threading.Lock()


def _cached(what: str, path: Path, device, load):
    """One load per checkpoint file version per process (pages of every session share it; inference only)."""
    stat = path.stat()
    key = (what, str(path), stat.st_mtime_ns, stat.st_size, str(device))
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    value = load()
    with _LOADED_LOCK:
        _LOADED[key] = value
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return value


class RunHandle:
    """One run, reached by its id (RunStore.handle) or its folder (the CLI): its folder, checkpoints by step, its
    generator or restorer, its config and status. Pages and the CLI ask it; they never build a run's paths."""

    def __init__(self, run_dir: str | Path, status=None):
        self.dir = Path(run_dir)
        self.run_id = self.dir.name
        self._status = status  # () -> str from the store (live runs); else status.json is read

    def __repr__(self) -> str:
        return f"RunHandle({str(self.dir)!r})"

    @property
    def config(self):
        """The run's validated RunConfig (ConfigError when config.json is missing or unreadable)."""
        from ..config import RunConfig
        return RunConfig.from_file(self.dir / "config.json")

    @property
    def status(self) -> str:
        if self._status is not None:
            return self._status()
        return str((rf.read_json(self.dir / "status.json", self.dir) or {}).get("status", "unknown"))

    def checkpoints(self) -> dict[int, Path]:
        """{step: file}, oldest first."""
        return {int(p.stem[5:]): p for p in rf.list_checkpoints(self.dir)}

    def checkpoint(self, name: str | None = None) -> Path:
        """The file of checkpoint `name` (as listed), or the newest."""
        return run_checkpoint(self.dir, name)

    def generator(self, checkpoint: str | None = None, device="cpu"):
        """(G, RunConfig, step) of a checkpoint (the newest by default), loaded once per file version."""
        path = self.checkpoint(checkpoint)
        return _cached("generator", path, device, lambda: load_run_generator(self.dir, path.name, device))

    def restorer(self, checkpoint: str | None = None) -> Restorer:
        """What restores with this run (RestoreError for 2-D runs), loaded once per checkpoint file version."""
        try:
            path = self.checkpoint(checkpoint)
        except CheckpointError:
            return load_restorer(self.dir, checkpoint)  # says why: not a run folder, a 2-D run, no checkpoint yet
        return _cached("restorer", path, "cpu", lambda: load_restorer(self.dir, path.name))

    def script(self) -> str:
        """The run as one plain PyTorch file (export.py)."""
        from .export import export_script
        return export_script(self.dir)

    def fork_info(self) -> dict | None:
        from .fork import fork_info
        return fork_info(self.dir)

    def fork_point(self, at_step: int | None = None):
        from .fork import fork_point
        return fork_point(self.dir, at_step)

    def where_logged(self, absolute: bool = True) -> list[str]:
        """absolute=False (classroom viewers): no server path."""
        from .tracking import where_logged
        return where_logged(self.dir, self.config, absolute=absolute)
