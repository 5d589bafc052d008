"""Forking what Monitor offers: checkpoints spread over a short run, the offered step is one a fork starts from."""
from __future__ import annotations

from gan_core import build_config
from gan_core.engine.checkpoint import checkpoint_interval, checkpoints_to_drop
from gan_core.runs.fork import checkpoint_step, fork_point, forkable_step
from test_app import runs_root  # noqa: F401  (a fixture)


def test_a_short_run_saves_checkpoints_a_fork_can_start_from():
    cfg = build_config("fast-mnist", steps=300, checkpoint_every=500)
    every = checkpoint_interval(cfg)
    assert len(range(every, 301, every)) >= 5  # a 300-step run kept only its last checkpoint (step 300)
    assert checkpoint_interval(build_config("fast-mnist", steps=100_000, checkpoint_every=500)) == 500
    assert checkpoint_interval(build_config("fast-mnist", steps=0, max_seconds=60, checkpoint_every=500)) == 500


def test_pruning_keeps_checkpoints_spread_over_the_run():
    kept = []
    for step in range(50, 1001, 50):  # pruned after every save, as the store does
        kept.append(step)
        for old in checkpoints_to_drop(kept, 5):
            kept.remove(old)
    assert len(kept) == 5 and kept[-1] == 1000
    assert kept[0] <= 250 and max(b - a for a, b in zip([0] + kept, kept)) <= 250


def test_the_offered_fork_step_is_the_checkpoint_fork_run_starts_from(store, tiny_config):
    run_id = store.start(tiny_config(arch="mlp", steps=300, checkpoint_every=500, log_every=50, sample_every=100))
    assert store.wait(run_id, 120) == "finished"
    names = store.snapshot(run_id).checkpoints
    assert checkpoint_step(names[0]) <= 100  # not just the last one
    for wanted in (53, 253, 300):
        offered = forkable_step(names, wanted)
        if offered is None:
            assert wanted < checkpoint_step(names[0])
            continue
        assert offered <= wanted and fork_point(store.run_dir(run_id), wanted)[0] == offered
    assert forkable_step(names, 253) is not None  # "Fork from step 253" then "no checkpoint at or before 253"
    assert checkpoint_step("step_00001405.safetensors") == 1405


def flat(node) -> list:
    out = []
    for child in getattr(node, "children", {}).values():
        out += [child, *flat(child)]
    return out


def test_train_shows_the_fork_above_start_and_whose_clock_it_runs_on(runs_root):  # noqa: F811
    from streamlit.testing.v1 import AppTest

    from test_app import APP
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["fork_from"] = {"run": "parent-run", "step": 40, "requested": 53, "elapsed": 52.4}
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    at.text_input(key="w_max_seconds").input("60").run()
    elements = flat(at.main)
    banner = next(i for i, e in enumerate(elements) if "**Fork** of run" in str(getattr(e, "value", "")))
    start = next(i for i, e in enumerate(elements) if getattr(e, "label", None) == "Start training")
    assert banner < start  # it sat below Start, where nobody looked before pressing it
    clock = " ".join(c.value for c in at.caption)
    assert "continues the parent's training clock" in clock and "52 s" in clock and "about 8 s more" in clock
