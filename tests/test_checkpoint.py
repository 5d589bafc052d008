"""Checkpoints: an exact round trip, and every unusable file refused with its name and the reason."""
import pickle

import pytest
import torch
from safetensors.torch import save_file

from gan_core.engine.checkpoint import CheckpointError, load_generator, read_checkpoint, save_training_state
from gan_core.engine.trainer import Trainer


def trained(cfg, iterations=3) -> Trainer:
    trainer = Trainer(cfg)
    for _ in range(iterations):
        trainer.train_iteration()
    trainer.elapsed = 1.25
    return trainer


def save(path, trainer: Trainer) -> None:
    save_training_state(path, trainer.gan, trainer.step, trainer.elapsed)


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_same_optimizer(a: torch.optim.Optimizer, b: torch.optim.Optimizer):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys() and sa["state"]
    for idx in sa["state"]:
        assert_same_tensors(sa["state"][idx], sb["state"][idx])


@pytest.mark.parametrize("variant", [
    dict(),  # conditional dcgan28 with EMA: the fast default
    dict(arch="mlp", conditional=False, spectral_norm=True, ema=0.0),
    dict(arch="upconv", optimizer="sgd", beta1=0.9),
])
def test_round_trip_is_exact(tmp_path, tiny_config, variant):
    cfg = tiny_config(**variant)
    a = trained(cfg)
    path = tmp_path / "step_3.safetensors"
    save(path, a)
    b = Trainer(cfg)
    b.resume_from(path)
    assert b.step == 3 and b.elapsed == pytest.approx(1.25)
    a, b = a.gan, b.gan
    assert_same_tensors(a.G.state_dict(), b.G.state_dict())
    assert_same_tensors(a.D.state_dict(), b.D.state_dict())
    if a.G_ema is not None:
        assert_same_tensors(a.G_ema.state_dict(), b.G_ema.state_dict())
    assert_same_optimizer(a.opt_g, b.opt_g)
    assert_same_optimizer(a.opt_d, b.opt_d)
    assert torch.equal(a.fixed_z, b.fixed_z) and torch.equal(a.rng.get_state(), b.rng.get_state())
    assert (a.fixed_y is None) == (b.fixed_y is None)
    assert torch.equal(a.generate(a.fixed_z, a.fixed_y), b.generate(b.fixed_z, b.fixed_y))


def test_resumed_2d_training_continues_exactly(tmp_path, tiny_config):
    """Point batches are drawn from the saved random stream, so a resumed run retraces the original."""
    cfg = tiny_config(dataset="ring-8", steps=10)
    a = trained(cfg)
    save(tmp_path / "c.safetensors", a)
    b = Trainer(cfg)
    b.resume_from(tmp_path / "c.safetensors")
    for _ in range(3):
        a.train_iteration()
        b.train_iteration()
    assert_same_tensors(a.gan.G.state_dict(), b.gan.G.state_dict())
    assert_same_tensors(a.gan.D.state_dict(), b.gan.D.state_dict())


def test_load_generator_rebuilds_g_from_the_file_alone(tmp_path, tiny_config):
    cfg = tiny_config(ema=0.0, precision="fp32")  # the loaded G runs in fp32: compare like with like on AMX CPUs
    a = trained(cfg)
    save(tmp_path / "c.safetensors", a)
    G, saved_cfg, meta = load_generator(tmp_path / "c.safetensors")
    assert saved_cfg == cfg and meta["step"] == "3" and not G.training
    with torch.no_grad():
        assert torch.equal(G(a.gan.fixed_z, a.gan.fixed_y), a.gan.generate(a.gan.fixed_z, a.gan.fixed_y))


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_pickle_is_refused_without_unpickling(tmp_path, monkeypatch, zipfile):
    path = tmp_path / "model.safetensors"  # the extension does not matter: the content decides
    torch.save({"G.weight": torch.zeros(2)}, path, _use_new_zipfile_serialization=zipfile)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert "model.safetensors" in str(e.value) and "pickle" in str(e.value)


@pytest.mark.parametrize("keep", [0.5, 0.999, 4, 0])
def test_truncated_file_is_refused(tmp_path, tiny_config, keep):
    path = tmp_path / "step_00000003.safetensors"
    save(path, trained(tiny_config(), 1))
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert "step_00000003.safetensors" in str(e.value)
    with pytest.raises(CheckpointError):
        load_generator(path)


def test_foreign_safetensors_and_missing_files_are_refused(tmp_path):
    save_file({"weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="other.safetensors.*not a GAN Studio checkpoint"):
        read_checkpoint(tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="gone.safetensors"):
        read_checkpoint(tmp_path / "gone.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        read_checkpoint(tmp_path / "junk.safetensors")


def test_oversized_file_is_refused_before_reading(tmp_path, tiny_config):
    path = tmp_path / "big.safetensors"
    save(path, trained(tiny_config(), 1))
    with pytest.raises(CheckpointError, match="big.safetensors.*larger than"):
        read_checkpoint(path, max_bytes=1024)


def test_checkpoint_from_another_architecture_names_the_field(tmp_path, tiny_config):
    save(tmp_path / "mlp.safetensors", trained(tiny_config(arch="mlp"), 1))
    other = Trainer(tiny_config(arch="dcgan28"))
    with pytest.raises(CheckpointError) as e:
        other.resume_from(tmp_path / "mlp.safetensors")
    msg = str(e.value)
    assert "mlp.safetensors" in msg and "arch: checkpoint has 'mlp', this run uses 'dcgan28'" in msg


def test_every_mismatching_field_is_named(tmp_path, tiny_config):
    save(tmp_path / "c.safetensors", trained(tiny_config(arch="mlp"), 1))
    other = Trainer(tiny_config(arch="mlp", z_dim=32, g_hidden=[16]))
    with pytest.raises(CheckpointError) as e:
        other.resume_from(tmp_path / "c.safetensors")
    assert "z_dim: checkpoint has 64" in str(e.value) and "g_hidden: checkpoint has [32]" in str(e.value)
    assert "arch" not in str(e.value)


def test_atomic_save_leaves_no_temp_file(tmp_path, tiny_config):
    save(tmp_path / "ckpt" / "c.safetensors", trained(tiny_config(), 1))
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["c.safetensors"]
