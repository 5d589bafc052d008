"""AppTest for issue 18's views (see inside a run): the script download, and the panels added after it."""
from __future__ import annotations

import re

import pytest

from test_app import app, runs_root, store, wait_finished  # noqa: F401 - runs_root is a fixture


def finished(tiny_config, **overrides) -> str:
    run_id = store().start(tiny_config(**{"steps": 6, "sample_every": 2, "checkpoint_every": 3, **overrides}))
    wait_finished(run_id)
    return run_id


def monitor(run_id: str):
    at = app("pages/monitor.py")
    at.selectbox(key="monitor_pick").select(run_id).run()
    assert not at.exception, at.exception
    return at


def download(at, label: str):
    return next(b for b in at.get("download_button") if b.proto.label == label)


def test_monitor_offers_the_run_as_a_plain_script(runs_root, tiny_config):
    run_id = finished(tiny_config, arch="mlp")
    button = download(monitor(run_id), "Script (.py)")
    assert not button.proto.disabled and button.proto.help.startswith("This run as one plain PyTorch file")


def test_script_download_says_why_a_run_cannot_be_exported(runs_root, tiny_config):
    run_id = finished(tiny_config, dataset="spiral", arch="mlp2d", z_dim=2, grid_size=64)
    button = download(monitor(run_id), "Script (.py)")
    assert button.proto.disabled and "spiral" in button.proto.help


def test_copying_panel_shows_neighbours_and_a_score(runs_root, tiny_config):
    run_id = finished(tiny_config, arch="mlp")
    at = monitor(run_id)
    next(b for b in at.button if b.label == "Check for copying").click().run()
    assert not at.exception, at.exception
    score = next(m for m in at.metric if m.label == "Memorisation score")
    assert score.value.endswith("%") and 0 <= float(score.value[:-1]) <= 100
    assert any("nearest training images" in str(i.proto) for i in at.get("image"))
    assert any(m.value.startswith("1. ") and m.value.count("·") >= 2 for m in at.markdown)  # distances per row
    assert any("the checkpoint of step 6." in c.value for c in at.caption)  # not "step step_00000006.safetensors"
    assert not any("step step_" in c.value for c in at.caption)


def test_copying_panel_explains_why_a_2d_run_has_none(runs_root, tiny_config):
    run_id = finished(tiny_config, dataset="ring-8", arch="mlp2d", z_dim=2, grid_size=64)
    at = monitor(run_id)
    assert any("needs a labelled image dataset" in i.value for i in at.info)
    assert not any(b.label == "Check for copying" for b in at.button)


def latent(run_id: str):
    at = app("pages/latent.py")
    at.selectbox(key="lat_run").select(run_id).run()
    assert not at.exception, at.exception
    return at


def test_direction_slider_changes_the_image_and_the_class_walk_draws(runs_root, tiny_config):
    run_id = finished(tiny_config, arch="mlp", conditional=True)
    at = latent(run_id)
    assert at.slider(key="lat_dir0") and "of the variance" in at.slider(key="lat_dir0").label
    before = [i.value for i in at.get("image")]
    at.slider(key="lat_dir0").set_value(3.0).run()
    assert not at.exception, at.exception
    after = [i.value for i in at.get("image")]
    assert after != before
    assert any("class 3 → class 8" in str(i.proto) for i in at.get("image"))


def test_directions_explain_why_a_2d_run_has_none(runs_root, tiny_config):
    run_id = finished(tiny_config, dataset="ring-8", arch="mlp2d", z_dim=2, grid_size=64)
    at = latent(run_id)
    assert any("apply to image runs" in i.value for i in at.info)


def test_healthy_reference_band_overlays_the_curves(runs_root, tiny_config):
    from test_app import charts
    run_id = finished(tiny_config, arch="mlp")  # tiny_config starts from the default preset, fast-mnist
    at = monitor(run_id)
    names = lambda: [t.get("name", "") for spec in charts(at).values() for t in spec["data"]]  # noqa: E731
    assert not any(n.startswith("healthy") for n in names())
    at.toggle(key="mon_reference").set_value(True).run()
    assert not at.exception, at.exception
    assert {"healthy G loss (fast-mnist)", "healthy D(real) (fast-mnist)", "healthy ‖∇G‖ (fast-mnist)"} <= set(names())


def test_reference_toggle_is_off_for_a_2d_run(runs_root, tiny_config):
    run_id = finished(tiny_config, dataset="ring-8", arch="mlp2d", z_dim=2, grid_size=64)
    toggle = monitor(run_id).toggle(key="mon_reference")
    assert toggle.disabled and "no" in toggle.help


def marker_steps(at) -> list:
    from test_app import charts
    return [s["x0"] for spec in charts(at).values() for s in spec["layout"].get("shapes", []) if s.get("name") == "timeline"]


def grid_caption(at) -> str:
    return next(str(i.proto) for i in at.get("image") if "Fixed noise at step" in str(i.proto))


def test_scrubber_moves_grid_markers_quality_and_diagnosis_together(runs_root, tiny_config):
    run_id = finished(tiny_config, arch="mlp", steps=12, sample_every=4)
    at = monitor(run_id)
    assert at.slider(key="mon_step").value == 12 and marker_steps(at) == []
    assert "Fixed noise at step 12" in grid_caption(at)
    at.slider(key="mon_step").set_value(5).run()
    assert not at.exception, at.exception
    assert "Fixed noise at step 4 (nearest saved grid to step 5)" in grid_caption(at)
    assert marker_steps(at) == [5, 5, 5]  # losses, scores, gradient norms
    assert any("5 logged steps so far" in i.value for i in at.info)  # the diagnosis as it was at step 5
    next(b for b in at.button if b.label == "Live").click().run()
    assert at.slider(key="mon_step").value == 12 and marker_steps(at) == []
    assert "Fixed noise at step 12" in grid_caption(at)


def test_a_step_outside_the_run_is_named_and_live_is_shown(runs_root, tiny_config):
    run_id = finished(tiny_config, arch="mlp")
    at = app()
    at.query_params["run"], at.query_params["step"] = run_id, "999"
    at.switch_page("pages/monitor.py").run()
    assert any("step 999 is outside run" in w.value and "0 to 6" in w.value for w in at.warning)
    assert at.slider(key="mon_step").value == 6


def test_compare_scrubber_shows_every_runs_grid_at_one_step_and_their_difference(runs_root, tiny_config):
    a = finished(tiny_config, arch="mlp", steps=8, sample_every=2)
    b = finished(tiny_config, arch="mlp", steps=8, sample_every=4, lr_g=1e-3)
    at = app("pages/compare.py")
    at.multiselect(key="cmp_runs").set_value([a, b]).run()
    at.slider(key="cmp_step").set_value(3).run()
    assert not at.exception, at.exception
    captions = [str(i.proto) for i in at.get("image")]
    assert any(f"{a} · step 2" in c for c in captions) and any(f"{b} · step 4" in c for c in captions)
    assert set(marker_steps(at)) == {3}
    at.toggle(key="cmp_diff").set_value(True).run()
    assert any(f"{b} − {a} · step 4" in str(i.proto) for i in at.get("image"))


def test_fork_from_the_scrubbers_step_opens_train_prefilled_and_starts_a_linked_child(runs_root, tiny_config):
    parent = finished(tiny_config, arch="mlp", steps=8, checkpoint_every=4)
    at = monitor(parent)
    at.slider(key="mon_step").set_value(6).run()
    button = next(b for b in at.button if b.label.startswith("Fork from step"))
    assert button.label == "Fork from step 4" and "the newest at or before step 6" in button.help  # what a fork does
    button.click().run()
    assert not at.exception, at.exception
    fork = at.session_state["fork_from"]
    assert (fork["run"], fork["step"], fork["requested"]) == (parent, 4, 6) and fork["elapsed"] > 0
    assert any("Fork** of run" in i.value and "from step 4" in i.value for i in at.info)  # Train, pre-filled
    assert at.text_input(key="w_g_hidden").value == "32"
    at.switch_page("pages/train.py")  # AppTest stays on the page it was given; a browser follows switch_page
    at.text_input(key="w_lr_g").input("0.001").run()
    at.text_input(key="w_steps").input("10").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    child = at.session_state["monitor_run"]
    assert child != parent and "fork_from" not in at.session_state
    wait_finished(child)
    at.switch_page("pages/monitor.py").run()
    shown = [re.sub(r"\\(.)", r"\1", c.value).replace("\u200b", "") for c in at.caption]  # plain text: escapes undone
    assert any(f"Forked from {parent} at step 4" in text for text in shown)
    next(b for b in at.button if b.label == "Compare with its parent").click().run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    shown = [re.sub(r"\\(.)", r"\1", c.value).replace("\u200b", "") for c in at.caption]
    assert any(f"is a fork of {parent} at step 4" in text for text in shown)
    from test_app import charts
    forks = [s["x0"] for spec in charts(at).values() for s in spec["layout"].get("shapes", []) if s.get("name") == "fork"]
    assert forks and set(forks) == {4}


def test_fork_is_refused_without_a_checkpoint(runs_root, tiny_config):
    run_id = store().start(tiny_config(arch="mlp", steps=100_000, checkpoint_every=100_000, log_every=1))
    at = monitor(run_id)
    button = next(b for b in at.button if b.label.startswith("Fork from step"))
    store().stop(run_id)
    wait_status = store().wait(run_id, timeout=120)
    assert button.disabled and "needs a checkpoint" in button.help and wait_status == "stopped"
