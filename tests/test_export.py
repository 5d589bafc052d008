"""`export-script`: the exported plain PyTorch file trains the same GAN as the studio (same losses, every preset)."""
import gzip
import re
import runpy
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_cli import run_cli

from gan_core.data import ASSETS
from gan_core.presets import PRESETS, build_config
from gan_core.runs.export import ExportError, export_script, script_for

LINE = re.compile(r"\[(\d+)/\d+\] Loss_D: (\S+) Loss_G: (\S+) D\(x\): (\S+) D\(G\(z\)\): (\S+)")
STEPS = 3


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return mnist_layout(tmp_path_factory.mktemp("data"))


def mnist_layout(root):
    """The package's MNIST digits (MNIST's t10k set) in torchvision's layout: DIR/MNIST/raw/."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("mnist-t10k-images-idx3-ubyte.gz", "mnist-t10k-labels-idx1-ubyte.gz"):
        shutil.copy(ASSETS / name, raw / name.removeprefix("mnist-"))
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz") as f, open(raw / "t10k-labels-idx1-ubyte", "wb") as out:
        out.write(f.read())  # one file unzipped: the script reads either form
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    return root


def short_run(store, preset: str, **extra) -> str:
    """`preset` for a few iterations with a small batch (the same maths), a loss row every step."""
    cfg = build_config(preset, **extra, steps=STEPS, batch_size=8, grid_size=10, log_every=1, eval_every=0, sample_every=1000,
                       checkpoint_every=1000, device="cpu", precision="fp32", threads=1).validate()
    # fp32 and one thread on both sides: the script trains in fp32, and summation order follows the thread count
    run_id = store.start(cfg)
    assert store.wait(run_id, timeout=120) == "finished"
    return run_id


def script_losses(path, data_root, out_png, capsys, monkeypatch) -> np.ndarray:
    """Run the exported file in this process (no second torch import) and read its printed losses."""
    monkeypatch.setattr(sys, "argv", [str(path), "--data-root", str(data_root), "--steps", str(STEPS), "--device", "cpu",
                                      "--log-every", "1", "--out", str(out_png)])
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the studio's run (short_run)
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        torch.set_num_threads(before)
    rows = [m.groups() for m in map(LINE.search, capsys.readouterr().out.splitlines()) if m]
    return np.array([[float("nan") if v == "-" else float(v) for v in row] for row in rows])


EXTRA_CASES = {  # options no preset uses, each on a light preset
    "r3gan+instance-noise": ("classic-mlp", dict(loss="r3gan", r1_gamma=1.0, instance_noise=0.1)),
    "wgan+sgd+clip": ("classic-mlp", dict(loss="wgan", optimizer="sgd", grad_clip=1.0, label_smoothing=0.1)),
    "hinge+spectral+ema": ("classic-dcgan", dict(loss="hinge", spectral_norm=True, ema=0.9, g_features=8, d_features=8)),
    "lsgan+r1+mlp-uniform": ("mlp-1024", dict(loss="lsgan", r1_gamma=2.0, g_hidden=[64], d_hidden=[64])),
}
NO_SCRIPT = {"inpaint-mnist": "task `inpaint`", "superres-mnist": "task `superres`", "dcgan64-celeba": "not `celeba`"}
CASES = {**{name: (name, {}) for name, p in PRESETS.items()  # restorers and CelebA (not shipped): test below
            if p["config"].get("task", "generate") == "generate" and p["config"].get("dataset") != "celeba"},
         **EXTRA_CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_exported_script_trains_the_same_gan(case, store, data_root, tmp_path, capsys, monkeypatch):
    preset, extra = CASES[case]
    run_id = short_run(store, preset, **extra)
    studio = store.snapshot(run_id).metrics[["step", "d_loss", "g_loss", "d_real", "d_fake"]].to_numpy()
    path = tmp_path / "my_gan.py"
    text = export_script(store.run_dir(run_id))
    assert "gan_core" not in text
    path.write_text(text)
    exported = script_losses(path, data_root, tmp_path / "samples.png", capsys, monkeypatch)
    assert exported.shape == (STEPS, 5)
    np.testing.assert_allclose(exported, studio, rtol=2e-4, atol=2e-5, equal_nan=True)
    assert (tmp_path / "samples.png").stat().st_size > 100


def test_cli_export_script_and_run_it(store, data_root, tmp_path, capsys):
    run_id = short_run(store, "cgan-mnist")
    code, out, err = run_cli(["export-script", str(store.run_dir(run_id)), "-o", str(tmp_path / "my_gan.py")], capsys)
    assert code == 0, err
    run = subprocess.run([sys.executable, "my_gan.py", "--data-root", str(data_root), "--steps", "2", "--out", "grid.png"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Loss_D" in run.stdout and (tmp_path / "grid.png").is_file()
    missing = subprocess.run([sys.executable, "my_gan.py", "--data-root", str(tmp_path / "nowhere"), "--steps", "1"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_export_refuses_what_it_cannot_write(tmp_path, capsys):
    code, out, err = run_cli(["export-script", str(tmp_path), "-o", str(tmp_path / "x.py")], capsys)
    assert code == 2 and "not a run folder" in err and err.count("\n") == 1
    code, out, err = run_cli(["export-script", str(tmp_path), "-o", str(tmp_path / "x.txt")], capsys)
    assert code == 2 and ".py" in err
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(build_config(dataset="spiral").to_json())
    with pytest.raises(ExportError, match="spiral"):
        export_script(folder)


@pytest.mark.parametrize("preset", list(NO_SCRIPT))
def test_runs_without_a_script_form_are_refused_in_one_line(preset, tmp_path):
    folder = tmp_path / preset
    folder.mkdir()
    (folder / "config.json").write_text(build_config(preset).to_json())
    with pytest.raises(ExportError, match=NO_SCRIPT[preset]):
        export_script(folder)


def cifar_layout(root, planted: bool = False):
    """Five tiny CIFAR-10 batches as pickled dicts of a uint8 array and a label list (the official files are Python 2
    pickles; loaded with encoding="latin1" they give these same str keys)."""
    import pickle
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8), "labels": list(range(8))}  # as loaded
        if planted and i == 1:
            batch["extra"] = shutil.rmtree  # any callable a pickle names, instead of an array
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    return root


@pytest.mark.parametrize("planted", [False, True], ids=["cifar-batches", "planted-callable"])
def test_the_script_reads_cifar_batches_and_refuses_anything_else_in_them(planted, tmp_path, capsys, monkeypatch):
    from gan_core.runs.export import script_for
    cfg = build_config("classic-mlp", dataset="cifar10", channels=3, batch_size=8, log_every=1, g_hidden=[16],
                       d_hidden=[16], grid_size=4)
    path = tmp_path / "my_gan.py"
    path.write_text(script_for(cfg, 1))
    root = cifar_layout(tmp_path / "data", planted)
    if planted:
        from pickle import UnpicklingError
        with pytest.raises(UnpicklingError, match="not part of a CIFAR-10 batch"):
            script_losses(path, root, tmp_path / "s.png", capsys, monkeypatch)
    else:
        losses = script_losses(path, root, tmp_path / "s.png", capsys, monkeypatch)
        assert losses.shape == (STEPS, 5) and np.isfinite(losses).all()


def test_the_script_carries_the_studios_own_update_and_readers():
    """One source for the step: the exported file holds gan.py's GAN class and data.py's readers verbatim, so a new
    regulariser written once in gan.py reaches the script too (no second template of GP / R1 / EMA)."""
    import inspect

    from gan_core.data import read_idx
    from gan_core.engine.gan import GAN
    text = script_for(build_config("classic-mlp", loss="wgan-gp", ema=0.9).validate(), 1)
    assert inspect.getsource(GAN) in text and inspect.getsource(read_idx) in text
    assert "gan.d_step(" in text and "gan.g_step(" in text
