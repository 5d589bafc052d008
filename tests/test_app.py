"""AppTest on every dashboard page: set widgets, start tiny runs, rerun until the store says they finished, and check
that charts, grids and metrics appear; bad values show their message and start nothing.

`run_every` fragments never fire inside AppTest, so each `at.run()` stands in for one refresh."""
from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
import streamlit as st
import torch
from conftest import REPO, gan_threads
from streamlit.testing.v1 import AppTest

from gan_core import RunStore
from gan_core.config import field_choices

APP = str(REPO / "app.py")
TINY_MLP = {"dataset": "mnist-embedded", "arch": "mlp", "g_hidden": "32", "d_hidden": "32", "batch_size": "16",
            "log_every": "2", "sample_every": "10", "checkpoint_every": "20", "eval_every": "0", "device": "cpu"}


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    """Every test gets its own runs folder, hence its own cached RunStore; its threads are stopped afterwards."""
    root = tmp_path / "runs"
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(root))
    yield root
    from ui.state import get_store
    get_store().shutdown(timeout=60)
    st.cache_resource.clear()
    assert not gan_threads(), "a trainer thread outlived its test"


def store():
    from ui.state import get_store  # the page's own store: the same cache_resource entry
    return get_store()


def app(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def set_fields(at: AppTest, values: dict) -> None:
    """Type into the Train form as a user would (dataset first: switching it brings that kind's defaults)."""
    for name in sorted(values, key=lambda n: n != "dataset"):
        if isinstance(values[name], bool):
            at.toggle(key=f"w_{name}").set_value(values[name]).run()
            continue
        widget = at.selectbox(key=f"w_{name}") if name in ("dataset", "arch", "loss", "device", "noise", "optimizer",
                                                           "precision", "init", "d_norm") else at.text_input(key=f"w_{name}")
        (widget.select if hasattr(widget, "select") else widget.input)(values[name]).run()
        assert not at.exception, at.exception


def start_button(at: AppTest):
    return next(b for b in at.button if b.label == "Start training")


def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def trace_values(array) -> list:
    """A plotly trace's x or y: plain lists, or base64 typed arrays (`{"bdata": …, "dtype": …}`)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def chart_titles(at: AppTest) -> list[str]:
    out = []
    for spec in charts(at).values():
        title = spec.get("layout", {}).get("title", {})
        out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


def wait_finished(run_id: str) -> str:
    status = store().wait(run_id, timeout=120)
    assert status == "finished", store().snapshot(run_id).message
    return status


def start_tiny_run(at: AppTest, steps: int = 30, **extra) -> str:
    set_fields(at, {**TINY_MLP, "steps": str(steps), "max_seconds": "0", **extra})
    assert not start_button(at).disabled, [e.value for e in at.error]
    start_button(at).click().run()
    assert not at.exception, at.exception
    run_id = at.session_state["monitor_run"]
    assert run_id in {r["run_id"] for r in store().runs()}
    return run_id


# ---------------------------------------------------------------------- Train
FORM_STATES = [{}, {"arch": "mlp", "loss": "wgan-gp"}, {"loss": "wgan"}]  # together they show every field


def test_every_bad_value_of_every_field_is_refused_in_the_form(runs_root):
    """The CLI's generated bad values (tests/test_reliability.py), typed into the form: each one shows a message,
    names its field in the summary, keeps Start disabled, and starts nothing."""
    from test_reliability import CASES

    from ui.form import label as field_label
    bad = {}
    for name, argv in CASES:
        if len(argv) == 2 and field_choices(name) is None:  # the fields a text box edits (choices are selectboxes)
            bad.setdefault(name, []).append(argv[1])
    tried = set()
    for state in FORM_STATES:
        at = app()
        set_fields(at, state)
        for name, values in bad.items():
            key = f"w_{name}"
            if name in tried or key not in {t.key for t in at.text_input}:
                continue
            tried.add(name)
            good = at.text_input(key=key).value
            for value in values:
                at.text_input(key=key).input(value).run()
                assert not at.exception, (name, value, at.exception)
                summary = " ".join(w.value for w in at.warning)
                assert field_label(name) in summary and at.error, (name, value, summary)  # its label, as on screen
                assert start_button(at).disabled, (name, value)
            at.text_input(key=key).input(good).run()
            assert not start_button(at).disabled, (name, [e.value for e in at.error])
    assert tried == set(bad) - {"data_root"}, set(bad) - tried
    assert not gan_threads() and not any(runs_root.glob("*/config.json"))  # no run was made


def test_incompatible_combination_is_explained_and_starts_nothing(runs_root):
    at = app()
    set_fields(at, {"dataset": "ring-8"})  # 2-D data brings 2-D defaults …
    at.selectbox(key="w_arch").select("dcgan32").run()  # … then an image architecture on points
    messages = " ".join(e.value for e in at.error)
    assert "arch" in messages or "ring-8" in messages, messages
    assert start_button(at).disabled and not gan_threads()


def test_offline_download_failure_is_a_message_not_a_traceback(runs_root, tmp_path):
    at = app()
    set_fields(at, {"dataset": "mnist", "data_root": str(tmp_path / "empty"), "steps": "5", "max_seconds": "0"})
    start_button(at).click().run()
    assert not at.exception, at.exception
    assert any("mnist-embedded" in e.value or "MNIST" in e.value for e in at.error), [e.value for e in at.error]
    assert not gan_threads() and not store().runs()


def test_image_folder_without_usable_images_is_a_message_naming_the_folder(runs_root, tmp_path):
    folder = tmp_path / "my_faces"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    at = app()
    set_fields(at, {"dataset": "image-folder", "data_root": str(folder), "steps": "5", "max_seconds": "0"})
    start_button(at).click().run()
    assert not at.exception, at.exception
    assert any("my_faces" in e.value for e in at.error), [e.value for e in at.error]
    assert not gan_threads() and not store().runs()


def test_preset_picker_fills_the_form(runs_root):
    at = app()
    at.selectbox(key="preset_pick").select("classic-dcgan").run()
    assert at.selectbox(key="w_arch").value == "dcgan32"
    assert at.text_input(key="w_batch_size").value == "128"
    assert at.text_input(key="w_g_every").value == "2"


def test_start_opens_monitor_which_shows_charts_grid_and_metrics_once_finished(runs_root):
    at = app()
    run_id = start_tiny_run(at)
    wait_finished(run_id)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="monitor_pick").value == run_id
    titles = " ".join(chart_titles(at))
    assert "Losses" in titles and "D(real) and D(fake) — probability" in titles and "Gradient norms" in titles
    assert at.get("image"), "no sample grid drawn"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Step"] == "30 / 30"
    assert any("finished" in m.value for m in at.markdown)
    loss = next(s for s in charts(at).values() if "Losses" in json.dumps(s.get("layout", {}).get("title", "")))
    assert trace_values(loss["data"][-1]["x"])[-1] == 30  # the curve reaches the last logged step
    assert len(trace_values(loss["data"][-1]["x"])) >= 10
    assert not gan_threads()
    # Rerunning the page never starts a second thread for the run.
    at.run()
    assert len(store().runs()) == 1 and not gan_threads()


def test_monitor_pause_resume_and_stop_control_the_thread(runs_root):
    at = app()
    run_id = start_tiny_run(at, steps=1_000_000)
    deadline = time.monotonic() + 60
    while store().snapshot(run_id).status != "running" and time.monotonic() < deadline:
        store().wait(run_id, timeout=0.2)
    at.run()
    at.button(key="btn_pause").click().run()
    deadline = time.monotonic() + 60
    while store().snapshot(run_id).status != "paused" and time.monotonic() < deadline:
        store().wait(run_id, timeout=0.2)
    at.run()
    assert any("paused" in m.value for m in at.markdown)
    at.button(key="btn_unpause").click().run()
    at.button(key="btn_stop").click().run()
    assert store().wait(run_id, timeout=60) == "stopped"
    at.run()
    assert any(":gray-badge[stopped]" in m.value for m in at.markdown)
    assert not gan_threads()


def test_monitor_shows_live_quality_metrics_and_the_class_histogram(runs_root):
    at = app()
    run_id = start_tiny_run(at, steps=40, eval_every="20", eval_samples="200")
    wait_finished(run_id)
    at.run()
    assert not at.exception, at.exception
    titles = " ".join(chart_titles(at))
    assert "Quality" in titles and "Classes of generated samples (final)" in titles
    assert any("modes covered" in c.value and "FID" in c.value for c in at.caption)
    assert any("GAN_STUDIO_CACHE" in c.value for c in at.caption)  # says where the evaluator cache lives


def test_diverged_run_is_named_and_its_fix_opens_in_train(runs_root, tiny_config):
    def poison(trainer):
        if trainer.step == 6:
            with torch.no_grad():
                next(trainer.gan.G.parameters()).fill_(float("nan"))
    run_id = store().start(tiny_config(steps=50, arch="mlp"), hooks=[poison])
    assert store().wait(run_id, timeout=60) == "diverged"
    at = app("pages/monitor.py")
    at.selectbox(key="monitor_pick").select(run_id).run()
    assert any("Diverged" in e.value for e in at.error), [e.value for e in at.error]
    fix = next(b for b in at.button if b.label.startswith("Open the fix in Train"))
    fix.click().run()
    assert not at.exception, at.exception
    assert float(at.text_input(key="w_lr_d").value) < tiny_config(arch="mlp").lr_d  # the fix lowered the rates
    assert not gan_threads()


def test_runs_from_another_process_appear_in_every_session_and_an_interrupted_one_resumes(runs_root, tiny_config):
    other = RunStore(runs_root)  # stands in for `python -m gan_core train` writing into the same runs folder
    run_id = other.start(tiny_config(steps=1_000_000, arch="mlp", checkpoint_every=5))
    deadline = time.monotonic() + 60
    while other.snapshot(run_id).step < 10 and time.monotonic() < deadline:
        other.wait(run_id, timeout=0.2)
    other.stop(run_id)
    assert other.wait(run_id, timeout=60) == "stopped"
    other.shutdown()
    status_file = runs_root / run_id / "status.json"
    status = json.loads(status_file.read_text())
    stopped_at = status["step"]
    status_file.write_text(json.dumps({**status, "status": "running"}))  # as if that process was killed mid-run

    tab1, tab2 = app("pages/monitor.py"), app("pages/monitor.py")  # two browser tabs, one shared store
    for tab in (tab1, tab2):
        assert tab.selectbox(key="monitor_pick").value == run_id
        assert any(":orange-badge[interrupted]" in m.value for m in tab.markdown)
        assert charts(tab) and tab.get("image")
    tab1.button(key="btn_resume").click().run()
    assert not tab1.exception, tab1.exception
    deadline = time.monotonic() + 60
    while store().snapshot(run_id).step <= stopped_at and time.monotonic() < deadline:
        store().wait(run_id, timeout=0.2)
    assert store().snapshot(run_id).step > stopped_at  # the step count continues
    store().stop(run_id)
    assert store().wait(run_id, timeout=60) == "stopped"
    tab2.run()
    assert any(":gray-badge[stopped]" in m.value for m in tab2.markdown)


def test_monitor_says_which_precision_auto_chose_and_why(runs_root, tiny_config, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    run_id = store().start(tiny_config(arch="mlp", steps=2))  # precision: auto, the default
    assert store().wait(run_id, timeout=60) == "finished"
    at = app("pages/monitor.py")
    assert any("fp32 — auto: no AMX" in m.value for m in at.markdown)


def test_monitor_with_no_runs_points_to_train_and_learn(runs_root):
    at = app("pages/monitor.py")
    assert any("No runs yet" in i.value for i in at.info)


# ---------------------------------------------------------------------- Latent explorer
def test_latent_explorer_sliders_interpolation_and_digit_picker(runs_root):
    at = app()
    run_id = start_tiny_run(at, steps=20)
    wait_finished(run_id)
    at.switch_page("pages/latent.py").run()
    assert not at.exception, at.exception
    images_before = [i.value for i in at.get("image")]
    assert images_before
    sliders = [s for s in at.slider if s.key and s.key.startswith("lat_z")]
    assert sliders, "no latent sliders"
    sliders[0].set_value(2.5).run()
    assert not at.exception, at.exception
    assert [i.value for i in at.get("image")] != images_before


def test_latent_explorer_digit_picker_and_interpolation_for_a_conditional_run(runs_root):
    at = app()
    run_id = start_tiny_run(at, steps=20, conditional=True)
    wait_finished(run_id)
    at.switch_page("pages/latent.py").run()
    assert not at.exception, at.exception
    before = [i.value for i in at.get("image")]
    digit_picker = next(b for b in at.get("button_group") if b.key == "lat_label")
    digit_picker.set_value(7).run()
    assert not at.exception, at.exception
    assert [i.value for i in at.get("image")] != before  # another digit drawn
    at.slider(key="lat_t").set_value(0.9).run()
    at.slider(key="lat_frames").set_value(4).run()
    assert not at.exception, at.exception
    assert any(b.label.endswith("(GIF)") or "GIF" in b.label for b in at.get("download_button"))


def finished_run(tiny_config, **overrides) -> str:
    run_id = store().start(tiny_config(**{"steps": 6, **overrides}))
    wait_finished(run_id)
    return run_id


def test_latent_explorer_opens_an_uploaded_checkpoint_and_refuses_bad_files(runs_root, tiny_config, tmp_path):
    run_id = finished_run(tiny_config, arch="mlp")
    good = store().checkpoints(run_id)[-1].read_bytes()
    pickle_file = tmp_path / "found_online.pth"
    torch.save({"weights": torch.zeros(3)}, pickle_file)
    at = app("pages/latent.py")
    at.get("button_group")[0].set_value("a checkpoint file").run()
    upload = at.file_uploader(key="lat_upload")
    upload.set_value(("mine.safetensors", good, "application/octet-stream")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("image"), "the uploaded generator drew nothing"
    for name, data, words in [("found_online.pth", pickle_file.read_bytes(), "pickle"),
                              ("half.safetensors", good[: len(good) // 2], "half.safetensors"),
                              ("noise.safetensors", bytes(range(256)) * 40, "noise.safetensors")]:
        at.file_uploader(key="lat_upload").set_value((name, data, "application/octet-stream")).run()
        assert not at.exception, at.exception
        errors = " ".join(e.value for e in at.error)
        assert words in errors, (name, errors)
        assert not at.get("image")


def test_resume_with_a_checkpoint_from_another_architecture_names_the_file(runs_root, tiny_config):
    mlp_run = finished_run(tiny_config, arch="mlp", steps=1_000_000, max_seconds=0.5)
    conv_run = finished_run(tiny_config, arch="dcgan28")
    target = store().checkpoints(mlp_run)[-1]
    before = {p.name: p.read_bytes() for p in (runs_root / mlp_run).rglob("*") if p.is_file() and p.suffix != ".lock"}
    target.write_bytes(store().checkpoints(conv_run)[-1].read_bytes())  # someone swapped the file
    status_file = runs_root / mlp_run / "status.json"
    status_file.write_text(json.dumps({**json.loads(status_file.read_text()), "status": "stopped"}))
    at = app("pages/monitor.py")
    at.selectbox(key="monitor_pick").select(mlp_run).run()
    at.button(key="btn_resume").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert target.name in errors and "arch" in errors, errors
    assert not gan_threads()
    assert (runs_root / mlp_run / "metrics.csv").read_bytes() == before["metrics.csv"]  # nothing on disk damaged


# ---------------------------------------------------------------------- Compare
def test_compare_overlays_runs_and_tabulates_config_differences(runs_root):
    at = app()
    first = start_tiny_run(at, steps=10)
    wait_finished(first)
    at.switch_page("pages/train.py").run()
    second = start_tiny_run(at, steps=10, lr_d="0.001")
    wait_finished(second)
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    at.multiselect(key="cmp_runs").set_value([first, second]).run()
    assert not at.exception, at.exception
    assert charts(at), "no overlaid curves"
    spec = next(iter(charts(at).values()))
    assert {t["name"] for t in spec["data"]} >= {first, second} or len(spec["data"]) >= 2
    tables = [d.value for d in at.dataframe]
    diff = next(t for t in tables if "lr_d" in t.index or "lr_d" in t.columns or "lr_d" in t.to_string())
    assert "0.001" in diff.to_string()


# ---------------------------------------------------------------------- Learn and the sidebar
def test_learn_page_launches_a_demo_run_in_one_click(runs_root):
    at = app("pages/learn.py")
    assert len(at.tabs) == 5 and not at.exception
    assert len(at.info) >= 5  # one discussion question per lesson
    at.button(key="learn_demo-mode-collapse").click().run()
    assert not at.exception, at.exception
    run_id = at.session_state["monitor_run"]
    assert store().snapshot(run_id).config.preset == "demo-mode-collapse"
    store().stop(run_id)
    assert store().wait(run_id, timeout=60) in ("stopped", "finished")


def test_sidebar_shows_the_device_and_links_to_live_runs(runs_root, tiny_config):
    run_id = store().start(tiny_config(steps=1_000_000))
    at = app()  # AppTest keeps the sidebar of st.navigation apps on the first run only: check a fresh session
    assert any("Device:" in c.value for c in at.sidebar.caption)
    assert any("Training now:** 1" in m.value for m in at.sidebar.markdown)
    links = [link for link in at.sidebar.get("page_link") if run_id in str(link.proto)]
    assert len(links) == 1 and links[0].proto.icon == ":material/play_circle:"
    store().pause(run_id)  # the status is the icon, not a "(paused)" the sidebar's width cut off
    deadline = time.monotonic() + 60
    while store().snapshot(run_id).status != "paused" and time.monotonic() < deadline:
        store().wait(run_id, timeout=0.2)  # returns early when the run ends; otherwise a bounded poll
    links = [link for link in app().sidebar.get("page_link") if run_id in str(link.proto)]
    assert links[0].proto.icon == ":material/pause_circle:" and "paused" not in links[0].proto.label
    store().stop(run_id)
    assert store().wait(run_id, timeout=60) == "stopped"


def test_monitor_history_follows_new_grids_after_a_full_rerun_and_keeps_an_older_pick(runs_root, tiny_config):
    """Issue 13: the history slider kept its stale pick (the newest grid at page load) after the run went on or
    stopped. The timeline scrubber (issue 18) that replaced it follows the newest step and grid while live, unless
    the user picked an older step."""
    import threading
    reached, gate = threading.Event(), threading.Event()

    def hold_after_the_grid_of_step_10(trainer):  # hooks run before the step's logging: step 11 has grid 10 behind it
        if trainer.step == 11:
            reached.set()
            gate.wait(120)

    def grid_caption(at) -> str:
        return next(str(i.proto) for i in at.get("image") if "Fixed noise at step" in str(i.proto))

    run_id = store().start(tiny_config(steps=30, arch="mlp", sample_every=5), hooks=[hold_after_the_grid_of_step_10])
    try:
        assert reached.wait(120)
        at = app("pages/monitor.py")
        at.run()
        assert at.slider(key="mon_step").value == store().snapshot(run_id).step  # live: the newest step …
        assert "Fixed noise at step 10" in grid_caption(at)  # … and the newest grid
    finally:
        gate.set()
    wait_finished(run_id)
    at.run()
    assert not at.exception, at.exception
    assert at.slider(key="mon_step").value == 30  # followed the run to its end …
    assert "Fixed noise at step 30" in grid_caption(at)  # … and its last grid
    at.slider(key="mon_step").set_value(0).run()  # what a redraw resetting the slider to its minimum sends
    at.run()
    assert at.slider(key="mon_step").value == 30  # still following the run: step 0 is no one's pick
    at.slider(key="mon_step").set_value(15).run()
    at.run()
    assert at.slider(key="mon_step").value == 15 and "Fixed noise at step 15" in grid_caption(at)  # an older pick stays
    at.switch_page("pages/compare.py").run()  # a run that does not draw the slider drops its state …
    at.switch_page("pages/monitor.py").run()
    assert not at.exception, at.exception
    assert at.slider(key="mon_step").value == 30 and "Fixed noise at step 30" in grid_caption(at)  # … not a blank step 0


def test_latent_explorer_draws_2d_runs_over_the_real_data_without_z_sliders(runs_root, tiny_config):
    run_id = store().start(tiny_config(steps=6, dataset="ring-8", arch="mlp2d"))
    wait_finished(run_id)
    at = app("pages/latent.py")
    at.selectbox(key="lat_run").select(run_id).run()
    assert not at.exception, at.exception
    assert not [s for s in at.slider if s.key and s.key.startswith("lat_z")]
    spec = charts(at)
    points = next(s for s in spec.values() if len(s.get("data", [])) == 2)
    names = [t["name"] for t in points["data"]]
    assert names[0].startswith("real data (ring-8)") and names[1].startswith("G's samples")
    real_x = trace_values(points["data"][0]["x"])
    assert max(abs(v) for v in real_x) > 1.5  # the ring of radius 2, drawn where it is


def test_monitor_shows_the_words_the_diagnose_cli_prints(runs_root):
    """One diagnosis for both: a real demo-d-too-strong run, named on Monitor exactly as `diagnose` names it."""
    from gan_core.insight.evaluate import diagnose_run
    from gan_core.presets import build_config
    run_id = store().start(build_config("demo-d-too-strong", steps=100, eval_every=0, device="cpu", threads=1))
    wait_finished(run_id)
    finding = diagnose_run(store().run_dir(run_id))
    assert finding.code == "d_wins"
    at = app("pages/monitor.py")
    at.selectbox(key="monitor_pick").select(run_id).run()
    assert not at.exception, at.exception
    assert finding.text in [w.value for w in at.warning]
    assert any(f"Evidence (step {finding.step})" in c.value for c in at.caption)


def test_train_names_fields_by_their_labels_and_states_the_config_upload_limit(runs_root):
    at = app()
    set_fields(at, {"batch_size": "lots", "lr_d": "-1"})
    warning = next(w.value for w in at.warning if w.value.startswith("Fix 2 fields"))
    assert "batch size" in warning and "lr d" in warning and "batch_size" not in warning
    uploader = at.get("file_uploader")[0].proto
    assert uploader.max_upload_size_mb == 1  # the uploader says 1 MB, the limit the page enforces (not 200 MB)
    labels = {t.label for t in at.text_input}
    assert "image size (0 = auto)" in labels or "channels (0 = auto)" in {s.label for s in at.selectbox}


def test_the_train_form_survives_a_reload_through_the_url(runs_root):
    at = app()
    at.selectbox(key="preset_pick").select("classic-mlp").run()
    at.text_input(key="w_lr_d").input("0.00123").run()
    assert at.query_params["preset"] == "classic-mlp" and at.query_params["lr_d"] == "0.00123"
    reloaded = AppTest.from_file(APP, default_timeout=120)
    reloaded.query_params.update({"preset": "classic-mlp", "lr_d": "0.00123", "loss": "no-such-loss"})
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.text_input(key="w_lr_d").value == "0.00123"
    assert reloaded.text_input(key="w_batch_size").value == "128"  # the rest comes from the preset
    assert reloaded.selectbox(key="w_loss").value == "bce"


def test_compare_gives_each_run_its_own_hue_and_the_legend_clears_the_toolbar():
    import pandas as pd

    from ui import charts as figures
    frames = {name: pd.DataFrame({"step": [10, 20], "d_loss": [1.0, 1.1], "fid": [300.0, 3.0]}) for name in "abc"}
    fig = figures.compare_figure(frames, "d_loss", "step", 0.0)
    colours = [t.line.color for t in fig.data]
    assert len(set(colours)) == 3  # the first two were two blues
    assert fig.layout.legend.y < 0  # under the plot, not over plotly's toolbar in the top right
    assert figures.compare_figure(frames, "fid", "step", 0.6).layout.yaxis.type == "log"
