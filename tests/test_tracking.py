"""TensorBoard and MLflow: live logging from a run, export of a run recorded without it, the missing-package line."""
import json
from pathlib import Path

import pytest
from test_app import app, runs_root, set_fields, start_button, start_tiny_run, wait_finished  # noqa: F401 (fixture)

from gan_core import cli, extras
from gan_core.presets import build_config
from gan_core.runs import files as rf
from gan_core.runs import tracking

LOGGED = dict(steps=4, log_every=1, sample_every=2, checkpoint_every=2)


def event_file(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def train(store, cfg) -> Path:
    run_id = store.start(cfg)
    assert store.wait(run_id, timeout=120) == "finished"
    return store.run_dir(run_id)


def csv_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in rf.parse_csv_text((run_dir / "metrics.csv").read_text(), rf.METRIC_COLUMNS)
            if r["d_loss"] is not None]


@pytest.fixture
def local_mlruns(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)


def mlflow_run(run_dir: Path):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient
    link = json.loads((run_dir / tracking.MLFLOW_FILE).read_text())
    assert link["tracking_uri"] == (run_dir.parent.parent / "mlruns").as_uri()  # mlruns/ beside the runs folder
    client = MlflowClient(link["tracking_uri"])
    return client, client.get_run(link["run_id"])


def test_tensorboard_event_file_has_every_curve_every_grid_and_the_config(store, tiny_config):
    pytest.importorskip("tensorboard")
    run_dir = train(store, tiny_config(tensorboard=True, **LOGGED))
    events = event_file(run_dir / "tb")
    assert [e.step for e in events.Scalars("loss/d_loss")] == csv_steps(run_dir)
    for tag in ("loss/g_loss", "D_score/d_real", "D_score/d_fake", "grad_norm/grad_norm_d", "speed/images_per_s"):
        assert tag in events.Tags()["scalars"]
    images = events.Images("samples/fixed_noise")
    assert [e.step for e in images] == rf.list_grid_steps(run_dir) == [0, 2, 4]
    assert (images[-1].width, images[-1].height) == rf.load_png(rf.grid_path(run_dir, 4)).shape[1::-1]
    assert set(events.PluginTagToContent("hparams")) >= {"_hparams_/experiment", "_hparams_/session_start_info"}
    assert '"batch_size": 16' in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()


def test_mlflow_logs_params_metrics_grids_and_the_final_checkpoint(store, tiny_config, local_mlruns):
    pytest.importorskip("mlflow")
    run_dir = train(store, tiny_config(mlflow=True, **LOGGED))
    client, run = mlflow_run(run_dir)
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.params["batch_size"] == "16" and run.data.params["loss"] == "bce"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/d_loss")] == csv_steps(run_dir)
    samples = [Path(f.path).name for f in client.list_artifacts(run.info.run_id, "samples")]
    assert samples == [rf.grid_path(run_dir, s).name for s in (0, 2, 4)]
    checkpoints = [Path(f.path).name for f in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert checkpoints == [rf.list_checkpoints(run_dir)[-1].name]


def test_a_resumed_run_continues_its_mlflow_run(store, tiny_config, local_mlruns):
    pytest.importorskip("mlflow")
    run_dir = train(store, tiny_config(mlflow=True, **LOGGED))
    first = json.loads((run_dir / tracking.MLFLOW_FILE).read_text())["run_id"]
    store.continue_run(run_dir.name, steps=6)
    assert store.wait(run_dir.name, timeout=120) == "finished"
    client, run = mlflow_run(run_dir)
    assert run.info.run_id == first and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(first, "loss/d_loss")] == csv_steps(run_dir)[:4] + [5, 6]


def test_a_resumed_run_continues_its_event_file_without_repeated_steps(store, tiny_config):
    pytest.importorskip("tensorboard")
    run_dir = train(store, tiny_config(tensorboard=True, **LOGGED))
    store.continue_run(run_dir.name, steps=6)
    assert store.wait(run_dir.name, timeout=120) == "finished"
    events = event_file(run_dir / "tb")
    assert [e.step for e in events.Scalars("loss/d_loss")] == csv_steps(run_dir) == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in events.Images("samples/fixed_noise")] == [0, 2, 4, 6]


def test_a_failing_sink_is_noted_and_training_goes_on(store, tiny_config, monkeypatch):
    pytest.importorskip("tensorboard")

    def broken(self, step, path):
        raise OSError("disk full (test)")

    monkeypatch.setattr(tracking.TensorBoardSink, "log_grid", broken)
    run_dir = train(store, tiny_config(tensorboard=True, **LOGGED))  # finished
    assert csv_steps(run_dir) == [1, 2, 3, 4] and rf.list_grid_steps(run_dir) == [0, 2, 4]
    assert "TensorBoard logging stopped: OSError: disk full (test)" in (run_dir / "events.log").read_text()
    assert event_file(run_dir / "tb").Tensors("config/text_summary")  # what it wrote before is kept


def test_export_tensorboard_of_a_run_recorded_without_it(store, tiny_config, capsys):
    pytest.importorskip("tensorboard")
    run_dir = train(store, tiny_config(**LOGGED))
    assert not (run_dir / "tb").exists()
    for _ in range(2):  # a second export replaces the first
        assert cli.main(["export", "tensorboard", str(run_dir)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result == {"tensorboard": str(run_dir / "tb"), "rows": len(rf.parse_csv_text(
        (run_dir / "metrics.csv").read_text(), rf.METRIC_COLUMNS)), "grids": 3}
    assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1
    events = event_file(run_dir / "tb")
    assert [e.step for e in events.Scalars("loss/d_loss")] == csv_steps(run_dir)
    assert [e.step for e in events.Images("samples/fixed_noise")] == [0, 2, 4]


def test_export_mlflow_of_a_run_recorded_without_it(store, tiny_config, capsys, local_mlruns):
    pytest.importorskip("mlflow")
    run_dir = train(store, tiny_config(**LOGGED))
    assert cli.main(["export", "mlflow", str(run_dir)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    client, run = mlflow_run(run_dir)
    assert result["mlflow_run_id"] == run.info.run_id and result["grids"] == 3
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/d_loss")] == csv_steps(run_dir)
    assert len(client.list_artifacts(run.info.run_id, "samples")) == 3


@pytest.fixture
def no_tensorboard(monkeypatch):
    real = extras.importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None if name == "tensorboard" else real(name))


def test_without_the_package_the_flag_says_how_to_install_it(no_tensorboard, tmp_path, capsys):
    problems = build_config(tensorboard=True).problems()
    assert list(problems) == ["tensorboard"] and "pip install tensorboard" in problems["tensorboard"]
    assert build_config().problems() == {}  # the default run needs nothing new
    assert cli.main(["train", "--tensorboard", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --tensorboard:") and "pip install tensorboard" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_export_without_the_package_is_one_line(no_tensorboard, store, tiny_config, capsys):
    run_dir = train(store, tiny_config(steps=1))
    assert cli.main(["export", "tensorboard", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install tensorboard" in err[0] and not (run_dir / "tb").exists()


def test_train_form_toggle_writes_the_event_file(runs_root):
    pytest.importorskip("tensorboard")
    at = app()
    run_id = start_tiny_run(at, steps=4, tensorboard=True)
    wait_finished(run_id)
    assert [e.step for e in event_file(runs_root / run_id / "tb").Scalars("loss/d_loss")] == [2, 4]


def test_monitor_says_where_the_run_is_logged(runs_root, local_mlruns):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    at = app()
    run_id = start_tiny_run(at, steps=2, tensorboard=True, mlflow=True)
    wait_finished(run_id)
    at.run()
    captions = " ".join(c.value for c in at.text)  # run values are shown as plain text, never Markdown
    link = json.loads((runs_root / run_id / tracking.MLFLOW_FILE).read_text())
    assert f"tensorboard --logdir {runs_root / run_id / 'tb'}" in captions and link["run_id"] in captions


def test_train_form_toggle_without_the_package_says_how_to_install_it(runs_root, no_tensorboard):
    at = app()
    set_fields(at, {"tensorboard": True})
    assert any("pip install tensorboard" in e.value for e in at.error), [e.value for e in at.error]
    assert start_button(at).disabled


def test_an_unreachable_tracking_store_is_noted_and_the_other_sink_still_logs(store, tiny_config, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the MLflow store should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (blocker / "mlruns").as_uri())
    run_dir = train(store, tiny_config(tensorboard=True, mlflow=True, **LOGGED))  # finished
    assert "MLflow logging is off:" in (run_dir / "events.log").read_text()
    assert [e.step for e in event_file(run_dir / "tb").Scalars("loss/d_loss")] == csv_steps(run_dir)


def test_quality_metrics_are_logged_and_empty_cells_are_not():
    row = {"step": 40, "wall_time": 2.5, "d_loss": 0.7, "g_loss": None, "images_per_s": float("nan"), "fid": 31.2,
           "modes_covered": 9.0, "label_accuracy": 0.8}
    assert tracking.row_scalars(row) == {"speed/wall_time": 2.5, "loss/d_loss": 0.7, "quality/fid": 31.2,
                                         "quality/modes_covered": 9.0, "quality/label_accuracy": 0.8}


# ---------------------------------------------------------------------- planted files: nothing outside the run folder
def test_export_refuses_a_metrics_csv_that_is_a_link_and_reads_nothing_outside(store, tiny_config, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    run_dir = train(store, tiny_config(**LOGGED))
    secret = tmp_path / "secret.csv"
    secret.write_text("step,d_loss\n777,0.5\n")
    (run_dir / "metrics.csv").unlink()
    (run_dir / "metrics.csv").symlink_to(secret)
    assert cli.main(["export", "tensorboard", str(run_dir)]) == 2  # the old code exported the outside file's rows
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err and not (run_dir / "tb").exists()


def test_export_does_not_block_on_a_fifo(store, tiny_config, capsys):
    import os
    import threading
    pytest.importorskip("tensorboard")
    run_dir = train(store, tiny_config(**LOGGED))
    (run_dir / "metrics.csv").unlink()
    os.mkfifo(run_dir / "metrics.csv")
    codes = []
    worker = threading.Thread(target=lambda: codes.append(cli.main(["export", "tensorboard", str(run_dir)])), daemon=True)
    worker.start()
    worker.join(60)  # a bound on a hang, not a wait for an event: the new code returns in well under a second
    if worker.is_alive():  # the old code: blocked opening the FIFO; a writer releases it so the test process can end
        os.close(os.open(run_dir / "metrics.csv", os.O_WRONLY | os.O_NONBLOCK))
    assert codes == [2] and "not a regular file" in capsys.readouterr().err


def test_a_tb_link_to_another_folder_is_never_emptied_or_written(store, tiny_config, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    run_dir = train(store, tiny_config(tensorboard=True, **LOGGED))
    elsewhere = tmp_path / "someone-elses-logs"
    elsewhere.mkdir()
    theirs = elsewhere / "events.out.tfevents.1.theirs"
    theirs.write_bytes(b"their events")
    import shutil
    shutil.rmtree(run_dir / "tb")
    (run_dir / "tb").symlink_to(elsewhere, target_is_directory=True)
    assert cli.main(["export", "tensorboard", str(run_dir)]) == 2  # the old code deleted theirs and wrote its own
    assert "symbolic link" in capsys.readouterr().err
    assert [p.name for p in elsewhere.iterdir()] == [theirs.name] and theirs.read_bytes() == b"their events"
    assert cli.main(["train", "--resume", str(run_dir), "--steps", "6", "--tensorboard"]) == 0  # trains without it
    assert [p.name for p in elsewhere.iterdir()] == [theirs.name] and theirs.read_bytes() == b"their events"
    assert "TensorBoard logging is off" in (run_dir / "events.log").read_text()


def test_credentials_in_a_tracking_uri_are_never_stored_or_shown(tmp_path):
    uri = "https://alice:s3cr3tTOKEN@mlflow.example.org:5000/path?token=abc&x-amz-signature=zz&experiment=1"
    assert tracking.public_uri(uri) == "https://mlflow.example.org:5000/path?experiment=1"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / tracking.MLFLOW_FILE).write_text(json.dumps({"run_id": "r1", "tracking_uri": uri}))  # an older run's
    lines = tracking.where_logged(run_dir, build_config(mlflow=True, tensorboard=True))
    assert "s3cr3tTOKEN" not in " ".join(lines) and "abc" not in " ".join(lines) and "mlflow.example.org" in lines[-1]
    hidden = tracking.where_logged(run_dir, build_config(mlflow=True, tensorboard=True), absolute=False)
    assert str(tmp_path) not in " ".join(hidden) and "run/tb" in hidden[0]


def test_mlflow_json_keeps_no_credentials(store, tiny_config, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    seen = []
    real_init = MlflowClient.__init__

    def init(self, tracking_uri=None, *a, **k):  # the store itself gets the full URI; the run folder must not
        seen.append(tracking_uri)
        real_init(self, (tmp_path / "mlruns").as_uri(), *a, **k)
    monkeypatch.setattr(MlflowClient, "__init__", init)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://alice:s3cr3tTOKEN@mlflow.example.org")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the stand-in store is a local file store
    run_dir = train(store, tiny_config(mlflow=True, **LOGGED))
    assert seen and "s3cr3tTOKEN" in seen[0]
    link = json.loads((run_dir / tracking.MLFLOW_FILE).read_text())
    assert link["tracking_uri"] == "https://mlflow.example.org"
