"""A restorer run among generation runs: the latent explorer lists generation runs only and says why, Monitor
says what a restorer's grid shows and raises no mode-collapse note, and loading its checkpoint as a sampler is one
plain line, not a wall of missing keys."""
from __future__ import annotations

import pytest

from gan_core import build_config
from gan_core.engine.checkpoint import CheckpointError
from gan_core.runs.handle import load_run_generator
from test_app import app, runs_root, store, wait_finished  # noqa: F401  (runs_root is a fixture)
from test_restore import TINY_RESTORER


def generation_then_restorer(tiny_config) -> tuple[str, str]:
    gen = store().start(tiny_config(arch="mlp", steps=4, checkpoint_every=2))
    wait_finished(gen)
    restorer = store().start(build_config("inpaint-mnist", steps=12, **{**TINY_RESTORER, "sample_every": 4,
                                                                          "log_every": 1, "eval_every": 0}).validate())
    wait_finished(restorer)
    return gen, restorer


def test_latent_explorer_lists_generation_runs_only_and_says_why(runs_root, tiny_config):
    gen, restorer = generation_then_restorer(tiny_config)
    at = app("pages/latent.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="lat_run").options == [gen] or at.selectbox(key="lat_run").value == gen
    assert restorer not in str(at.selectbox(key="lat_run").options)
    assert any("restorer run is not listed" in c.value and "no noise z" in c.value for c in at.caption)
    with pytest.raises(CheckpointError) as e:
        load_run_generator(store().run_dir(restorer))
    assert "inpaint restorer" in str(e.value) and "Missing key" not in str(e.value)


def test_monitor_names_a_restorers_grid_rows_and_no_mode_collapse_note(runs_root, tiny_config):
    _, restorer = generation_then_restorer(tiny_config)
    at = app("pages/monitor.py")
    at.selectbox(key="monitor_pick").select(restorer).run()
    assert not at.exception, at.exception
    captions = [str(i.proto) for i in at.get("imgs")] + [str(i.proto) for i in at.get("image")]
    assert any("damaged inputs" in c and "originals" in c for c in captions), captions
    assert not any("Fixed noise" in c for c in captions)
    texts = " ".join(a.value for kind in (at.success, at.info, at.warning) for a in kind)
    assert "Mode collapse is judged" not in texts


def test_a_restorers_diagnosis_never_waits_for_mode_collapse_metrics():
    import numpy as np
    import pandas as pd

    from gan_core.insight.diagnosis import diagnose
    steps = np.arange(10, 410, 10)
    steady = pd.DataFrame({"step": steps, "d_loss": 1.3, "g_loss": 0.9, "d_real": 0.6, "d_fake": 0.4,
                           "grad_norm_d": 1.0, "grad_norm_g": 1.0, "l1_loss": 0.1})
    found = diagnose(steady, "probability", "running", build_config("inpaint-mnist"))
    assert found[0].code != "too_early"  # the rows are enough for a verdict: the check below is not vacuous
    assert not any("Mode collapse is judged" in d.text for d in found)
