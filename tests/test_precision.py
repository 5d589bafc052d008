"""Precision and compile are visible choices that never crash a run: bf16 tracks fp32, and whatever the machine
lacks (bf16 support, a working compiler) falls back to fp32 / eager with a note in the run's log."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gan_core.engine.device as device_module
from gan_core.engine.device import choose_precision


def losses(store, config) -> np.ndarray:
    run_id = store.start(config)
    assert store.wait(run_id, timeout=120) == "finished", store.snapshot(run_id).message
    df = store.snapshot(run_id).metrics
    return df[["d_loss", "g_loss"]].to_numpy(dtype=float)


@pytest.mark.skipif(not device_module.bf16_supported(torch.device("cpu")),
                    reason="this CPU has no bf16 support (the fallback is tested below)")
def test_seeded_bf16_run_tracks_the_fp32_one(store, tiny_config):
    common = dict(arch="mlp", g_hidden=[64], d_hidden=[64], batch_size=32, steps=60, seed=3, log_every=5,
                  loss="bce", lr_d=2e-4, lr_g=2e-4, beta1=0.5, beta2=0.999)  # pinned: not whatever the default preset uses
    fp32 = losses(store, tiny_config(**common, precision="fp32"))
    bf16 = losses(store, tiny_config(**common, precision="bf16"))
    other_seed = losses(store, tiny_config(**{**common, "seed": 4}, precision="fp32"))
    assert np.isfinite(bf16).all() and fp32.shape == bf16.shape
    precision_gap = np.abs(fp32 - bf16).mean()
    seed_gap = np.abs(fp32 - other_seed).mean()
    assert precision_gap < 0.1, precision_gap  # the curves stay together …
    assert precision_gap < seed_gap + 0.02  # … closer than a change of seed moves them


def test_bf16_without_support_falls_back_to_fp32_with_a_note(store, tiny_config, monkeypatch):
    monkeypatch.setattr(device_module, "bf16_supported", lambda device: False)
    run_id = store.start(tiny_config(arch="mlp", precision="bf16", steps=4))
    assert store.wait(run_id, timeout=60) == "finished"
    assert any("bf16 is not supported" in e and "fp32" in e for e in store.snapshot(run_id).events)


CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("amx, bf16, label", [(True, True, "bf16 — auto: AMX"), (False, False, "fp32 — auto: no AMX")])
def test_auto_takes_bf16_on_a_cpu_exactly_when_it_has_amx_tiles(monkeypatch, amx, bf16, label):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    chosen = choose_precision("auto", CPU)
    assert (chosen.bf16, chosen.label, chosen.note) == (bf16, label, "")


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_auto_keeps_a_2d_run_in_fp32_even_where_bf16_is_native(monkeypatch, store, tiny_config, device):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto", device, points=True).label == "fp32 — auto: 2-D points"
    assert choose_precision("bf16", device, points=True).bf16  # asked for explicitly: still bf16
    if device == CPU:  # a real run: the ring's tiny nets only lose modes to bf16's rounding
        run_id = store.start(tiny_config(dataset="ring-8", steps=2))
        assert store.wait(run_id, timeout=60) == "finished"
        assert store.snapshot(run_id).precision == "fp32 — auto: 2-D points"


@pytest.mark.parametrize("has_bf16, bf16", [(True, True), (False, False)])
def test_auto_takes_bf16_on_a_gpu_exactly_when_it_supports_bf16(monkeypatch, has_bf16, bf16):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: has_bf16)
    chosen = choose_precision("auto", CUDA)
    assert chosen.bf16 is bf16 and chosen.label.startswith(("bf16" if bf16 else "fp32") + " — auto: GPU")


def test_explicit_choices_stay_explicit_whatever_the_hardware(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert not choose_precision("fp32", CPU).bf16  # AMX present, fp32 asked: fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(device_module, "bf16_supported", lambda device: True)
    forced = choose_precision("bf16", CPU)  # no AMX, bf16 asked: bf16, with a word on its speed
    assert forced.bf16 and forced.label == "bf16" and "slower" in forced.note


def test_a_run_reports_its_precision_and_why(store, tiny_config, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    run_id = store.start(tiny_config(arch="mlp", steps=2))  # the default: auto
    assert store.wait(run_id, timeout=60) == "finished"
    assert store.snapshot(run_id).precision == "fp32 — auto: no AMX"


class BrokenCompiled(torch.nn.Module):
    """What torch.compile returns on a machine without a working compiler: fine until the first call."""

    def __init__(self, module):
        super().__init__()
        self._orig_mod = module

    def forward(self, *args, **kwargs):
        raise RuntimeError("InductorError: no C++ compiler found")


def test_compile_failing_at_the_first_step_trains_eagerly_with_a_note(store, tiny_config, monkeypatch):
    monkeypatch.setattr(torch, "compile", BrokenCompiled)
    run_id = store.start(tiny_config(arch="mlp", compile=True, steps=5))
    assert store.wait(run_id, timeout=60) == "finished", store.snapshot(run_id).message
    snap = store.snapshot(run_id)
    assert snap.step == 5
    assert any("torch.compile failed" in e and "eagerly" in e for e in snap.events)


def test_compile_unavailable_at_wrap_time_trains_eagerly_with_a_note(store, tiny_config, monkeypatch):
    def no_compile(module):
        raise RuntimeError("torch.compile is not supported on this platform")
    monkeypatch.setattr(torch, "compile", no_compile)
    run_id = store.start(tiny_config(arch="mlp", compile=True, steps=3))
    assert store.wait(run_id, timeout=60) == "finished"
    assert any("torch.compile unavailable" in e for e in store.snapshot(run_id).events)
