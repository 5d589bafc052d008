"""Training a dashboard run in a child `python -m gan_core train --workers ...` instead of a server thread: the child
can use the cores nobody else is using (worker processes sharing each batch, engine/distributed.py), and its Python
never competes with the server's page reruns for one interpreter lock. The store follows it as it follows any run
another process writes (its folder, control.json). Tests and tools keep the default, a thread, whose trainer they
can reach (hooks, `trainer()`)."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config import RunConfig
from ..errors import StudioError
from . import files as rf


class RunNotStarted(StudioError, ValueError):
    """The training process refused the run (its one-line reason)."""


def spawn_training(root: Path, workers: str, cfg: RunConfig | None = None,
                   resume: str | None = None) -> tuple[str, subprocess.Popen]:
    """Start `train --workers <workers>` on `cfg` (a new run under `root`) or on the run `resume` names (its last
    checkpoint, as Resume does); (run id, process) once the child has said its run folder. Whatever the child refuses
    (missing data, a model over budget, a run already at its end) is raised as its one line."""
    config_path = None
    if resume is None:
        fd, config_path = tempfile.mkstemp(prefix=".start-", suffix=".json", dir=root)
        with os.fdopen(fd, "w") as f:
            f.write(cfg.to_json())
        what = ["--config", config_path, "--out", str(root)]
    else:
        what = ["--resume", str(root / resume)]
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gan_core", "train", *what, "--workers", workers, "--quiet"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True)  # a Ctrl-C of the server's terminal: shutdown() stops it
        said, run_id = [], None
        for line in proc.stderr:  # the child names its folder once it trains (cli.py's "run folder: ...")
            found = re.match(r"run folder: " + re.escape(str(root)) + r"/([^/\s]+)", line)
            if found or (resume is not None and line.startswith("run folder: ")):
                run_id = resume or found.group(1)
                break
            said.append(line.strip())
    finally:
        if config_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(config_path)
    if run_id is None:
        proc.wait()
        errors = [line.removeprefix("error: ") for line in said if line.startswith("error: ")]
        raise RunNotStarted(errors[-1] if errors else f"the training process ended (exit code {proc.returncode}): "
                            f"{rf.one_line(' '.join(said))[-300:]}")
    return run_id, proc
