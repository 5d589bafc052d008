"""Fork from here: a child run starts from the parent's checkpoint at or before a step, with changed settings,
and records its parent; bad requests are refused with one line before anything is created."""
import json

import pytest
from test_cli import last_json, run_cli

from gan_core.config import ConfigError
from gan_core.engine.checkpoint import CheckpointError
from gan_core.runs.fork import fork_info, fork_point, fork_run
from gan_core.runs.timeline import StepError


@pytest.fixture
def parent(store, tiny_config):
    # constant rates (lr_decay 0), so the child's rows show exactly the rates the fork sets
    run_id = store.start(tiny_config(arch="mlp", steps=8, checkpoint_every=4, sample_every=2, lr_decay=0.0))
    assert store.wait(run_id, timeout=120) == "finished"
    return run_id


def rows(store, run_id):
    return store.snapshot(run_id).metrics.set_index("step")


def test_fork_starts_from_the_checkpoint_before_the_step_with_the_new_settings(store, parent):
    child = fork_run(store, parent, at_step=6, lr_g=1e-3, steps=10)
    assert store.wait(child, timeout=120) == "finished"
    info = fork_info(store.run_dir(child))
    assert info["parent"] == parent and info["fork_step"] == 4 and info["requested_step"] == 6
    assert info["changed"] == {"lr_g": 1e-3, "steps": 10}
    metrics = rows(store, child)
    assert list(metrics.index) == [5, 6, 7, 8, 9, 10]  # from the fork point on
    assert (metrics["lr_g"] == 1e-3).all() and (metrics["lr_d"] == rows(store, parent)["lr_d"].iloc[0]).all()
    assert any("forked from" in e for e in store.snapshot(child).events)
    assert store.snapshot(parent).step == 8  # the parent is untouched


def test_bad_forks_are_refused_before_anything_starts(store, parent, tmp_path):
    before = {r["run_id"] for r in store.runs()}
    with pytest.raises(StepError, match="step 99 is outside run .* steps 0 to 8"):
        fork_run(store, parent, at_step=99)
    with pytest.raises(CheckpointError, match="no checkpoint at or before step 2; its first is at step 4"):
        fork_run(store, parent, at_step=2)
    with pytest.raises(ConfigError, match="keeps its optimiser"):
        fork_run(store, parent, optimizer="sgd")
    with pytest.raises(ConfigError, match="where run .* ends"):
        fork_run(store, parent)  # at its last step, with no more steps to train
    bare = store.root / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((store.run_dir(parent) / "config.json").read_text())
    with pytest.raises(CheckpointError, match="bare has no checkpoint to fork from"):
        fork_point(bare)
    assert {r["run_id"] for r in store.runs()} == before | {"bare"}


def test_cli_fork_at_step_with_changed_flags(store, parent, capsys):
    code, out, err = run_cli(["train", "--fork", str(store.run_dir(parent)), "--at-step", "5", "--lr-d", "0.001",
                              "--steps", "9", "--quiet"], capsys)
    assert code == 0, err
    result = last_json(out)
    assert result["status"] == "finished" and result["steps"] == 9
    info = json.loads(open(f"{result['run_dir']}/fork.json").read())
    assert info["parent"] == parent and info["fork_step"] == 4 and info["changed"]["lr_d"] == 0.001
    code, out, err = run_cli(["train", "--at-step", "5", "--quiet"], capsys)
    assert code == 2 and "--at-step needs --fork" in err
    code, out, err = run_cli(["train", "--fork", str(store.run_dir(parent)), "--at-step", "50", "--quiet"], capsys)
    assert code == 2 and "step 50 is outside run" in err and err.count("\n") == 1
