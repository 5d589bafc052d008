"""`python -m gan_core`: train → sample → resume end to end, and one clear line (exit code 2) for bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from conftest import REPO

from gan_core import cli

RESULT_KEYS = {"run_dir", "status", "steps", "seconds", "images_per_s"}
TINY_FLAGS = ["--g-features", "8", "--d-features", "8", "--g-hidden", "16", "--d-hidden", "16", "--batch-size", "8",
              "--grid-size", "10", "--log-every", "1", "--eval-every", "0", "--device", "cpu", "--quiet"]


def python_m(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "gan_core", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def run_cli(argv, capsys):
    """main() in-process: (exit code, stdout, stderr); argparse's own errors exit through SystemExit."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_train_sample_resume_end_to_end(tmp_path):
    out = tmp_path / "runs"
    train = python_m("train", "--dataset", "mnist-embedded", "--steps", "4", "--checkpoint-every", "2",
                     *TINY_FLAGS, "--out", str(out), cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    result = last_json(train.stdout)
    assert set(result) >= RESULT_KEYS
    assert result["status"] == "finished" and result["steps"] == 4 and result["images_per_s"] > 0
    assert " — auto: " in result["precision"] and result["precision"] in train.stderr  # the default, and why
    run_dir = result["run_dir"]
    assert os.path.dirname(run_dir) == str(out.resolve())

    sample = python_m("sample", run_dir, "-n", "12", "-o", str(tmp_path / "x.npy"), cwd=tmp_path)
    assert sample.returncode == 0, sample.stderr
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert json.loads(sample.stdout.strip().splitlines()[-1])["step"] == 4

    resume = python_m("train", "--resume", run_dir, "--steps", "7", "--quiet", cwd=tmp_path)
    assert resume.returncode == 0, resume.stderr
    resumed = last_json(resume.stdout)
    assert resumed["status"] == "finished" and resumed["steps"] == 7 and resumed["run_dir"] == run_dir
    steps = [int(line.split(",")[0]) for line in open(os.path.join(run_dir, "metrics.csv")).read().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5, 6, 7]

    bad = python_m("train", "--lr-d", "-0.1", "--out", str(out), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "--lr-d" in bad.stderr and "-0.1" in bad.stderr


@pytest.fixture
def ring_run(tmp_path, capsys):
    """A finished 3-step ring-8 run trained in-process (fast), as the folder the CLI prints."""
    code, out, err = run_cli(["train", "--dataset", "ring-8", "--steps", "3", *TINY_FLAGS, "--out", str(tmp_path / "runs")],
                             capsys)
    assert code == 0, err
    return last_json(out)["run_dir"]


def test_2d_sample_and_label_checks(ring_run, tmp_path, capsys):
    code, out, err = run_cli(["sample", ring_run, "-n", "50", "-o", str(tmp_path / "p.npy"), "--seed", "3"], capsys)
    assert code == 0, err
    points = np.load(tmp_path / "p.npy")
    assert points.shape == (50, 2) and points.dtype == np.float32
    run_cli(["sample", ring_run, "-n", "50", "-o", str(tmp_path / "q.npy"), "--seed", "3"], capsys)
    assert np.array_equal(points, np.load(tmp_path / "q.npy"))  # the seed decides the samples


def test_conditional_sample_with_a_label(tmp_path, capsys):
    code, out, err = run_cli(["train", "--arch", "mlp", "--conditional", "--steps", "2", *TINY_FLAGS,
                              "--out", str(tmp_path / "runs")], capsys)
    assert code == 0, err
    run_dir = last_json(out)["run_dir"]
    code, out, err = run_cli(["sample", run_dir, "-n", "4", "--label", "7", "-o", str(tmp_path / "s.png")], capsys)
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0
    code, out, err = run_cli(["sample", run_dir, "--label", "10", "-o", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "--label" in err and "between 0 and 9" in err


def test_list_shows_runs_and_presets(ring_run, tmp_path, capsys):
    code, out, _ = run_cli(["list", "--out", str(tmp_path / "runs"), "--json"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["run_id"] for r in rows] == [os.path.basename(ring_run)]
    assert rows[0]["status"] == "finished" and rows[0]["step"] == 3 and rows[0]["arch"] == "mlp2d"
    code, out, _ = run_cli(["list", "--presets"], capsys)
    assert code == 0 and "classic-mlp" in out and "classic-dcgan" in out


def test_dataset_alone_picks_its_defaults():
    args = cli.build_parser().parse_args(["train", "--dataset", "ring-8"])
    cfg = cli._train_config(args)
    assert cfg.arch == "mlp2d" and cfg.is_2d
    default = cli._train_config(cli.build_parser().parse_args(["train"]))
    assert default.dataset == "mnist-embedded" and default.preset == "fast-mnist"


@pytest.mark.parametrize("argv, names", [
    (["train", "--lr-d", "-0.1"], ["--lr-d", "> 0"]),
    (["train", "--lr-g", "nan"], ["--lr-g", "finite"]),
    (["train", "--batch-size", "abc"], ["--batch-size", "'abc'"]),
    (["train", "--batch-size", ""], ["--batch-size", "empty"]),
    (["train", "--preset", "nope"], ["--preset", "nope"]),
    (["train", "--dataset", "nope"], ["--dataset", "nope"]),
    (["train", "--dataset", "ring-8", "--arch", "dcgan28"], ["--arch", "mlp2d"]),
    (["train", "--dataset", "ring-8", "--conditional"], ["--conditional", "labels"]),
    (["train", "--steps"], ["--steps"]),
    (["train", "--no-such-flag", "1"], ["--no-such-flag"]),
    (["train", "--resume", "nowhere"], ["--resume", "nowhere"]),
    (["train", "--config", "missing.json"], ["--config", "missing.json"]),
    (["sample", "nowhere", "-o", "x.npy"], ["nowhere"]),
    (["sample", "nowhere", "-n", "lots", "-o", "x.npy"], ["-n", "lots"]),
    (["bogus"], ["bogus"]),
])
def test_bad_input_is_one_line_naming_the_flag(argv, names, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a refused command might create lands in the repo
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert err.strip().count("\n") == 0, err
    assert err.startswith("error: ")
    for name in names:
        assert name in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_sample_output_errors_are_one_line(ring_run, tmp_path, capsys):
    for argv, name in [(["-n", "0", "-o", "x.npy"], "-n"), (["-o", "x.txt"], "-o"),
                       (["-o", str(tmp_path / "missing-dir" / "sub" / "x.npy")], "missing-dir"),
                       (["-o", str(tmp_path / "grid.png")], ".npy"),
                       (["--label", "1", "-o", "x.npy"], "--label")]:
        if "missing-dir" in argv[-1]:
            (tmp_path / "missing-dir").write_text("a file where a folder should be")
        code, _, err = run_cli(["sample", ring_run, *argv], capsys)
        assert code == 2 and err.strip().count("\n") == 0 and name in err, (argv, err)


def test_offline_dataset_is_one_line_pointing_at_the_embedded_set(tmp_path, capsys, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise RuntimeError("network unreachable (test)")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    code, _, err = run_cli(["train", "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                            "--out", str(tmp_path / "runs")], capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "mnist-embedded" in err and str(tmp_path / "data" / "MNIST") in err


def test_resuming_a_finished_run_says_to_raise_steps(ring_run, capsys):
    code, _, err = run_cli(["train", "--resume", ring_run, "--quiet"], capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "--steps" in err and "already reached its end" in err


def test_resume_with_a_different_architecture_names_the_field(ring_run, capsys):
    code, _, err = run_cli(["train", "--resume", ring_run, "--steps", "6", "--g-hidden", "8,8", "--quiet"], capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "g_hidden" in err and "step_00000003.safetensors" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_unavailable_device_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(["train", "--device", "cuda", "--out", str(tmp_path / "runs")], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "CUDA" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_sample_of_a_ring_run_covers_the_modes_the_run_reached(tmp_path, capsys):
    """Issue 13: `sample` clamped 2-D points to [-1, 1], squashing a radius-2 ring onto the square's edge (0 of 8
    modes by the VEEGAN measure while the run itself covered them)."""
    from gan_core.data import load_points
    from gan_core.engine.point_metrics import point_modes
    code, out, err = run_cli(["train", "--preset", "2d-default", "--steps", "300", "--sample-every", "100",
                              "--threads", "1", "--device", "cpu", "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    run_dir = last_json(out)["run_dir"]
    logged = pd.read_csv(Path(run_dir) / "metrics.csv")["modes_covered"].dropna().iloc[-1]
    assert logged >= 3  # the run reached several modes (fixed-noise samples, logged at its last grid)
    code, out, err = run_cli(["sample", run_dir, "-n", "2000", "-o", str(tmp_path / "p.npy")], capsys)
    assert code == 0, err
    points = np.load(tmp_path / "p.npy")
    assert np.abs(points).max() > 1.5  # where the ring is, not squashed into [-1, 1]
    assert point_modes(points, load_points("ring-8"))["modes_covered"] >= logged - 1


@pytest.fixture(scope="module")
def collapse_run(tmp_path_factory):
    """The mode-collapse demo as Learn names it, 250 steps (a few seconds; 2-D)."""
    out = tmp_path_factory.mktemp("runs")
    code = cli.main(["train", "--preset", "demo-mode-collapse", "--name", "learn-demo-mode-collapse", "--steps", "250",
                     "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    return next(out.iterdir())


def test_diagnose_at_a_step_is_what_the_timeline_shows_there(collapse_run, capsys):
    from gan_core.insight.diagnosis import diagnose_snapshot
    from gan_core.runs.store import RunStore
    from gan_core.runs.timeline import as_of
    snap = RunStore(collapse_run.parent).snapshot(collapse_run.name, max_points=100_000)
    for step in (60, 200, 250):
        code, out, _ = run_cli(["diagnose", str(collapse_run), "--step", str(step)], capsys)
        assert code == 0
        then = diagnose_snapshot(as_of(snap, step))[0]
        result = json.loads(out)
        assert (result["finding"], result["text"], result["step"]) == (then.code, then.text, then.step)
        assert result["step"] is None or result["step"] <= step  # nothing from after the step
    code, out, err = run_cli(["diagnose", str(collapse_run), "--step", "9999"], capsys)
    assert code == 2 and "0 to 250" in err and len(err.strip().splitlines()) == 1


def test_diagnose_names_the_fix_and_train_fix_of_runs_it(collapse_run, capsys):
    code, out, _ = run_cli(["diagnose", str(collapse_run)], capsys)
    result = json.loads(out)
    assert result["finding"] == "mode_collapse"
    assert result["fix"] == {"preset": "2d-playground", "settings": {"d_hidden": [64, 64, 64]}}
    code, out, err = run_cli(["train", "--fix-of", str(collapse_run), "--steps", "20", "--device", "cpu", "--quiet"],
                             capsys)
    assert code == 0, err
    fixed_dir = Path(last_json(out)["run_dir"])
    assert fixed_dir.parent == collapse_run.parent and fixed_dir.name.endswith("learn-demo-mode-collapse-fixed")
    cfg = json.loads((fixed_dir / "config.json").read_text())
    assert (cfg["preset"], cfg["name"], cfg["d_hidden"], cfg["steps"]) == (
        "2d-playground", "learn-demo-mode-collapse-fixed", [64, 64, 64], 20)
    code, _, err = run_cli(["train", "--fix-of", str(fixed_dir), "--preset", "fast-mnist"], capsys)
    assert code == 2 and "--fix-of" in err
