"""TensorBoard and MLflow: sinks fed from the rows, grids and checkpoints a run already records.

Why sinks and not code in the loop: the store hands each logged row, saved grid and checkpoint to a Tracker,
which passes them to the sinks on its own thread. Training never waits for an event file or a tracking
server, a failing sink is noted in the run's events and dropped, and `export` feeds the same sinks from a
finished run's folder (metrics.csv, samples/). Both packages are optional extras, imported only when used.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import safe_io
from ..errors import StudioError
from ..extras import EXTRAS, install_hint
from . import files as rf

TB_FOLDER = "tb"
MLFLOW_FILE = "mlflow.json"  # which MLflow run a studio run logs to (a resume continues it)
EXPERIMENT = "gan-studio"
CLOSE_WAIT_SECONDS = 120.0  # how long the end of a run waits for a slow tracking server before leaving it
GROUPS = {"d_loss": "loss", "g_loss": "loss", "d_real": "D_score", "d_fake": "D_score", "grad_norm_d": "grad_norm",
          "grad_norm_g": "grad_norm", "lr_d": "lr", "lr_g": "lr", "images_per_s": "speed", "wall_time": "speed"}


def scalar_tag(column: str) -> str:
    """metrics.csv column → tag, grouped so TensorBoard and MLflow show related curves together."""
    return f"{GROUPS.get(column, 'quality')}/{column}"


def row_scalars(row: dict) -> dict[str, float]:
    """Every finite number of a logged row except the step itself, by tag."""
    out = {}
    for key, value in row.items():
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[scalar_tag(key)] = float(value)
    return out


def flat_params(config: dict) -> dict[str, object]:
    """Config values as hparams/params accept them: numbers, strings and booleans (lists become text)."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in sorted(config.items())}


def default_mlflow_uri(runs_root: Path) -> str:
    """MLFLOW_TRACKING_URI when set, else a file store `mlruns/` beside the runs folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path(runs_root).resolve().parent / "mlruns").as_uri()


SECRET_QUERY_KEYS = ("token", "password", "passwd", "secret", "key", "auth", "signature", "credential", "sig")


def public_uri(uri: str) -> str:
    """A tracking URI with its credentials removed (`https://user:TOKEN@host` → `https://host`, and query values
    such as ?token=… or ?X-Amz-Signature=…): what is stored in mlflow.json and shown on a page."""
    try:
        parts = urlsplit(str(uri))
    except ValueError:
        return "(a tracking URI that could not be read)"
    netloc = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not any(word in k.lower() for word in SECRET_QUERY_KEYS)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def where_logged(run_dir: str | os.PathLike, config, absolute: bool = True) -> list[str]:
    """How to open a run's TensorBoard / MLflow logs (`config`: its RunConfig), one line each (for the Monitor page).
    absolute=False (classroom viewers): no server path, only the run's own folder name and the store's name."""
    run_dir, lines = Path(run_dir), []
    if config.tensorboard:
        where = run_dir / TB_FOLDER if absolute else f"{run_dir.name}/{TB_FOLDER} (in the runs folder)"
        lines.append(f"TensorBoard: tensorboard --logdir {where}")
    link = rf.read_json(run_dir / MLFLOW_FILE, run_dir) if config.mlflow else None
    if link:
        uri = public_uri(str(link.get("tracking_uri")))
        if not absolute and uri.startswith("file:"):
            uri = f"the file store {Path(urlsplit(uri).path).name or uri}"
        lines.append(f"MLflow: run {link.get('run_id')} in {uri}")
    return lines


class TrackingError(StudioError):
    """An export that cannot run: not a run folder, or the extra's package is missing."""


# ---------------------------------------------------------------------- sinks
class TensorBoardSink:
    """An event file in runs/<id>/tb/ through torch's own SummaryWriter."""
    name = "TensorBoard"

    def __init__(self, log_dir: Path, config: dict, first_step: int, t0: float):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
        self.t0 = t0
        # a resume drops what an earlier process logged after the checkpoint it continues from; a `tb` that is a link
        # (or any part of the way to it) is refused, so nothing is written through it
        safe_io.folder_inside(log_dir, log_dir.parent)
        self.writer = SummaryWriter(str(log_dir), purge_step=first_step + 1 if first_step else None)
        if not first_step:
            params = flat_params(config)
            for summary in hparams(params, {scalar_tag("d_loss"): 0.0, scalar_tag("g_loss"): 0.0}):
                self.writer.file_writer.add_summary(summary)
            self.writer.add_text("config", "```json\n" + json.dumps(config, indent=2, sort_keys=True) + "\n```", 0)

    def log_rows(self, rows: list[dict]) -> None:
        for row in rows:
            walltime = self.t0 + row["wall_time"] if row.get("wall_time") is not None else None
            for tag, value in row_scalars(row).items():
                self.writer.add_scalar(tag, value, row["step"], walltime=walltime)

    def log_grid(self, step: int, path: Path) -> None:
        image = rf.load_png(path, path.parents[1])  # inside the run folder, no link followed
        self.writer.add_image("samples/fixed_noise", image, step, dataformats="HW" if image.ndim == 2 else "HWC")

    def log_checkpoint(self, step: int, path: Path) -> None:
        pass

    def close(self, status: str) -> None:
        self.writer.close()


class MlflowSink:
    """Params, metrics by step, every grid and the final checkpoint as artifacts of one MLflow run."""
    name = "MLflow"

    def __init__(self, run_dir: Path, config: dict, first_step: int, t0: float, tracking_uri: str):
        if tracking_uri.startswith("file:"):  # MLflow 3 keeps the file store only on request; it is what we document
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow import MlflowClient
        from mlflow.entities import Param
        self.client, self.t0, self.last_checkpoint = MlflowClient(tracking_uri), t0, None
        self.run_dir = run_dir
        link = rf.read_json(run_dir / MLFLOW_FILE, run_dir) or {}
        stored_uri = public_uri(tracking_uri)  # credentials stay in the environment, never in the run folder
        self.run_id = link.get("run_id") if first_step and link.get("tracking_uri") == stored_uri else None
        if self.run_id:  # a resume continues the same MLflow run
            run = self.client.get_run(self.run_id)
            self.client.update_run(self.run_id, status="RUNNING")
            logged = run.data.params
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            run = self.client.create_run(experiment_id, run_name=run_dir.name, tags={"gan_studio.run_dir": str(run_dir)})
            self.run_id, logged = run.info.run_id, {}
            rf.atomic_write(run_dir / MLFLOW_FILE, json.dumps({"run_id": self.run_id, "tracking_uri": stored_uri}), run_dir)
        params = [Param(k, str(v)) for k, v in flat_params(config).items() if k not in logged]  # params never change
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        self._upload(run_dir / "config.json")

    def log_rows(self, rows: list[dict]) -> None:
        from mlflow.entities import Metric
        metrics = [Metric(tag, value, int(1000 * (self.t0 + (row.get("wall_time") or 0.0))), row["step"])
                   for row in rows for tag, value in row_scalars(row).items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def log_grid(self, step: int, path: Path) -> None:
        self._upload(path, "samples")

    def log_checkpoint(self, step: int, path: Path) -> None:
        self.last_checkpoint = path  # only the final one is uploaded (close)

    def _upload(self, path: Path, folder: str | None = None) -> None:
        """A run file as an artifact, only while it is a regular file inside the run folder: MLflow copies what a
        path points to, and a link planted in a shared runs folder must not carry another file into the store."""
        if safe_io.is_regular(path, inside=self.run_dir):
            self.client.log_artifact(self.run_id, str(path), folder)

    def close(self, status: str) -> None:
        if self.last_checkpoint is not None:
            self._upload(self.last_checkpoint, "checkpoints")
        self.client.set_terminated(self.run_id, {"finished": "FINISHED", "stopped": "KILLED"}.get(status, "FAILED"))


def sink_openers(config: dict, run_dir: Path, first_step: int, t0: float) -> dict:
    """{name: how to open it} for the sinks a config asks for (opened on the tracker's thread: imports take seconds)."""
    openers = {}
    if config.get("tensorboard"):
        openers[TensorBoardSink.name] = lambda: TensorBoardSink(run_dir / TB_FOLDER, config, first_step, t0)
    if config.get("mlflow"):
        openers[MlflowSink.name] = lambda: MlflowSink(run_dir, config, first_step, t0, default_mlflow_uri(run_dir.parent))
    return openers


# ---------------------------------------------------------------------- the tracker
class Tracker:
    """Calls every sink on one background thread, in order; a sink that raises is noted once and dropped."""

    def __init__(self, openers: dict, note, name: str = "run"):
        self.note, self.sinks = note, []
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, args=(openers,), name=f"gan-track-{name}", daemon=True)
        self.thread.start()

    def log_rows(self, rows: list[dict]) -> None:
        self.calls.put(("log_rows", (list(rows),)))

    def log_grid(self, step: int, path: Path) -> None:
        self.calls.put(("log_grid", (step, path)))

    def log_checkpoint(self, step: int, path: Path) -> None:
        self.calls.put(("log_checkpoint", (step, path)))

    def close(self, status: str, wait: float = CLOSE_WAIT_SECONDS) -> bool:
        """Flush and close every sink; False when a sink was still busy after `wait` seconds."""
        self.calls.put(("close", (status,)))
        self.thread.join(wait)
        if self.thread.is_alive():
            self.note(f"experiment tracking still busy after {wait:.0f} s; the end of the run may be missing there")
            return False
        return True

    def _work(self, openers: dict) -> None:
        for name, open_sink in openers.items():
            try:
                self.sinks.append(open_sink())
            except Exception as e:  # a bad tracking URI, an unwritable folder: training goes on without it
                self.note(f"{name} logging is off: {type(e).__name__}: {e}")
        while True:
            method, args = self.calls.get()
            for sink in list(self.sinks):
                try:
                    getattr(sink, method)(*args)
                except Exception as e:
                    self.note(f"{sink.name} logging stopped: {type(e).__name__}: {e}")
                    self.sinks.remove(sink)
                    if method != "close":
                        with contextlib.suppress(Exception):  # keep what it had written
                            sink.close("failed")
            if method == "close":
                return


def open_tracker(config: dict, run_dir: Path, first_step: int, started_at: float, note) -> Tracker | None:
    """A tracker for a run that asked for TensorBoard or MLflow, else None."""
    if not any(config.get(extra) for extra in EXTRAS):
        return None
    return Tracker(sink_openers(config, run_dir, first_step, started_at), note, run_dir.name)


# ---------------------------------------------------------------------- export (runs recorded without it)
def _read_metrics(run_dir: Path) -> str:
    """metrics.csv through safe_io ("" when there is none): a link or a FIFO there is refused, never read."""
    try:
        with safe_io.open_inside(run_dir / "metrics.csv", "rb", inside=run_dir) as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    except safe_io.UnsafeFile as e:
        raise TrackingError(f"run {run_dir.name}: {e}") from None


def export_to_tracker(target: str, run_dir: str | os.PathLike, out: str | None = None) -> dict:
    """Feed a run folder's metrics.csv, grids and last checkpoint to one sink; returns where it went."""
    run_dir = Path(run_dir).resolve()
    config = rf.read_json(run_dir / "config.json")
    if config is None:
        raise TrackingError(f"{run_dir} is not a run folder (no readable config.json)")
    hint = install_hint(target)
    if hint:
        raise TrackingError(hint)
    status = rf.read_json(run_dir / "status.json", run_dir) or {}
    text = _read_metrics(run_dir)
    header, _, body = text.partition("\n")
    rows = rf.parse_csv_text(body, header.split(",")) if header else []
    t0 = float(status.get("started_at") or time.time())
    if target == "tensorboard":
        log_dir = Path(out).resolve() if out else run_dir / TB_FOLDER
        if not out and rf.writer_alive(run_dir) and config.get("tensorboard"):
            raise rf.RunBusy(f"run {run_dir.name} is training and writing {log_dir} itself")
        if not out:  # a re-export replaces the earlier one, inside the run's own tb/ only (never through a link)
            safe_io.remove_files(log_dir, "events.out.tfevents.", inside=run_dir)
        sink = TensorBoardSink(log_dir, config, 0, t0)
        where = {"tensorboard": str(log_dir)}
    else:
        uri = out or default_mlflow_uri(run_dir.parent)
        sink = MlflowSink(run_dir, config, 0, t0, uri)
        where = {"mlflow_run_id": sink.run_id, "tracking_uri": public_uri(uri)}
    sink.log_rows(rows)
    steps = rf.list_grid_steps(run_dir)
    for step in steps:
        sink.log_grid(step, rf.grid_path(run_dir, step))
    checkpoints = rf.list_checkpoints(run_dir)
    if checkpoints:
        sink.log_checkpoint(int(checkpoints[-1].stem[5:]), checkpoints[-1])
    sink.close(status.get("status", "finished"))
    return {**where, "rows": len(rows), "grids": len(steps)}
