"""AppTest for the playground page: play, single D/G steps, layer toggles, presets, slow motion, bad data.

`run_every` never fires inside AppTest, so each `at.run()` stands in for one refresh."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "playground.py")
TINY = {"pg_g_width": 8, "pg_d_width": 8, "pg_g_layers": 1, "pg_d_layers": 1, "pg_batch_size": 16}


@pytest.fixture
def at():
    """The page with tiny nets and 3 iterations per refresh, so every rerun is quick."""
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception
    for key, value in TINY.items():
        app.number_input(key=key).set_value(value)
    app.number_input(key="pg_iters").set_value(3)
    app.run()
    assert not app.exception
    return app


def plane(at) -> dict:
    """The spec of the big plane figure (plotly charts come back as UnknownElement; the spec is in .proto)."""
    assert not at.exception, at.exception
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith("pg_plane")]
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def trace_names(at) -> set[str]:
    return {t.get("name") for t in plane(at)["data"]}


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def status(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Status:"))


def test_page_opens_paused_with_the_plane_and_metrics(at):
    assert at.title[0].value == "2-D GAN playground"
    assert at.button(key="pg_play").label == "Play"
    assert metric(at, "Iteration") == "0"
    assert metric(at, "Modes covered").endswith("/ 8")
    assert {"D's output", "G's manifold", "Real samples", "Fake samples", "G's gradients"} <= trace_names(at)
    assert "paused" in status(at)


def test_play_trains_on_every_refresh_and_pause_stops(at):
    at.button(key="pg_play").click().run()
    assert at.button(key="pg_play").label == "Pause"
    assert metric(at, "Iteration") == "3" and "playing" in status(at)
    at.run()  # the next refresh
    assert metric(at, "Iteration") == "6"
    assert metric(at, "D loss") != "–" and metric(at, "G loss") != "–"
    at.button(key="pg_play").click().run()
    at.run()
    assert metric(at, "Iteration") == "6" and "paused" in status(at)


def test_step_d_only_and_step_g_only(at):
    at.button(key="pg_step_d").click().run()
    assert "1 D steps, 0 G steps" in status(at)
    assert metric(at, "G loss") == "–" and metric(at, "D loss") != "–"
    at.button(key="pg_step_g").click().run()
    assert "1 D steps, 1 G steps" in status(at)
    assert metric(at, "Iteration") == "0"  # an iteration is D then G, counted by "Step both"
    at.button(key="pg_step").click().run()
    assert "2 D steps, 2 G steps" in status(at) and metric(at, "Iteration") == "1"


def test_each_layer_toggles_on_its_own(at):
    names = {"pg_show_real": "Real samples", "pg_show_fake": "Fake samples", "pg_show_heatmap": "D's output",
             "pg_show_arrows": "G's gradients", "pg_show_manifold": "G's manifold"}
    for key, name in names.items():
        at.checkbox(key=key).uncheck().run()
        shown = trace_names(at)
        assert name not in shown
        assert shown == set(names.values()) - {name}
        at.checkbox(key=key).check().run()
    at.checkbox(key="pg_show_density").check().run()
    assert "True density" in trace_names(at)


def test_a_preset_sets_the_widgets_and_plays(at):
    at.selectbox(key="pg_preset").set_value("WGAN-GP covers every mode")
    at.button(key="pg_load_preset").click().run()
    assert at.selectbox(key="pg_loss").value == "wgan-gp"
    assert at.number_input(key="pg_n_critic").value == 5
    assert any("WGAN-GP covers every mode" in i.value for i in at.info)
    assert at.button(key="pg_play").label == "Pause"
    heatmap = next(t for t in plane(at)["data"] if t["name"] == "D's output")
    assert heatmap["colorbar"]["title"]["text"] == "critic score"  # not a probability for WGAN
    assert "loss `wgan-gp`" in status(at)


def test_slow_motion_walks_through_six_sub_steps(at):
    at.button(key="pg_walk_start").click().run()
    titles = []
    for _ in range(6):
        assert not at.exception
        titles.append(next(i.value for i in at.info if i.value.startswith("**")))
        assert plane(at)["layout"]["title"]["text"] in titles[-1]  # the figure draws this very stage
        at.button(key="pg_walk_next").click().run()
    assert [t[2] for t in titles] == list("123456")
    assert "Sample noise" in titles[0] and "update" in titles[5]
    assert "Sample noise" in next(i.value for i in at.info if i.value.startswith("**"))  # another iteration
    at.button(key="pg_walk_end").click().run()
    assert "Real samples" in trace_names(at)


def test_custom_data_without_points_keeps_the_old_data_and_says_why(at):
    at.selectbox(key="pg_dataset").set_value("custom").run()
    assert not at.exception
    assert any("at least 2 points" in w.value for w in at.warning)
    assert "data `ring-8`" in status(at)


def test_changing_the_architecture_restarts_and_a_live_setting_does_not(at):
    at.button(key="pg_step").click().run()
    at.number_input(key="pg_lr_g").set_value(0.002).run()
    assert metric(at, "Iteration") == "1"
    at.number_input(key="pg_g_width").set_value(12).run()
    assert metric(at, "Iteration") == "0"


def test_a_csv_upload_becomes_the_data(at):
    at.file_uploader(key="pg_csv").set_value(("corners.csv", b"x,y\n-1,-1\n1,1\n-1,1\n1,-1\n", "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="pg_dataset").value == "custom"
    assert any("Loaded 4 points from corners.csv" in i.value for i in at.info)
    assert "data `custom`" in status(at)
    assert metric(at, "Modes covered") == "–"  # mode metrics exist only for ring-8 / grid-25


def test_a_bad_csv_says_which_file_and_line_and_keeps_the_data(at):
    at.file_uploader(key="pg_csv").set_value(("bad.csv", b"x,y\n1,2\n3,oops\n", "text/csv")).run()
    assert not at.exception
    assert any("bad.csv, line 3: expected two numbers" in e.value for e in at.error)
    assert at.selectbox(key="pg_dataset").value == "ring-8" and "data `ring-8`" in status(at)


def test_settings_survive_a_reload_through_the_url_and_the_speed_box_is_labelled(at):
    """Issue 13: a reload wiped the playground; the iterations box had no label."""
    at.number_input(key="pg_lr_d").set_value(0.005).run()
    assert at.query_params["lr_d"] == "0.005" and at.query_params["g_width"] == "8"
    reloaded = AppTest.from_file(PAGE, default_timeout=120)  # a fresh session on the same URL
    reloaded.query_params.update({"lr_d": "0.005", "g_width": "8", "loss": "no-such-loss"})
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.number_input(key="pg_lr_d").value == 0.005 and reloaded.number_input(key="pg_g_width").value == 8
    assert reloaded.selectbox(key="pg_loss").value == "bce"  # a bad value in the URL falls back to the default
    assert at.number_input(key="pg_iters").label == "Iterations per refresh"
    assert at.number_input(key="pg_iters").proto.label_visibility.value == 0  # VISIBLE (it was COLLAPSED)
