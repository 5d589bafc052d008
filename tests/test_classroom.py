"""Classroom mode in AppTest (issue 17): roles, the queue on the pages, presenter views and share links.
The browser tests (test_classroom_browser.py) drive the same things with a teacher and a viewer at once."""
from __future__ import annotations

import pytest
from conftest import gan_threads
from streamlit.testing.v1 import AppTest
from test_app import APP, runs_root, start_button, store  # noqa: F401  (runs_root is a fixture)
from test_app import app as open_app

from gan_core.presets import build_config
from ui.links import config_from_query, config_params, encode_config

PASSWORD = "correct horse"


@pytest.fixture
def classroom(runs_root, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GAN_STUDIO_TEACHER_PASSWORD", PASSWORD)
    return runs_root


def finished_run(tiny_config, **extra) -> str:
    run_id = store().start(tiny_config(arch="mlp", steps=4, sample_every=2, checkpoint_every=2, **extra))
    assert store().wait(run_id, 60) == "finished"
    return run_id


def labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


# ---------------------------------------------------------------------- roles
def test_without_a_password_the_local_user_controls_everything(runs_root):  # noqa: F811
    at = open_app()
    assert not start_button(at).disabled
    assert not any("Viewer" in c.value or "Teacher" in c.value for c in at.sidebar.caption)


def test_a_viewer_watches_but_every_control_is_disabled_or_absent(classroom, tiny_config):
    run_id = finished_run(tiny_config)
    at = open_app()
    assert any("Viewer" in c.value for c in at.sidebar.caption)
    start = start_button(at)
    assert start.disabled and "teacher" in start.help
    at.switch_page("pages/learn.py").run()
    assert all(b.disabled for b in at.button if b.key and b.key.startswith("learn_"))
    at.switch_page("pages/monitor.py").run()
    assert not at.exception and at.get("image"), "a viewer sees the run"
    assert not labels(at) & {"Pause", "Stop", "Resume", "Resume from checkpoint", "Continue training"}
    at.switch_page("pages/latent.py").run()
    assert not at.exception
    assert "a checkpoint file" not in at.get("button_group")[0].proto.options.__repr__()
    assert run_id


def test_the_teacher_unlocks_with_the_password_and_a_wrong_one_is_refused(classroom):
    # AppTest drops an st.navigation app's sidebar after the first run: one fresh session per attempt
    wrong = open_app()
    wrong.text_input(key="roles_guess").input("correct horsE").run()
    assert wrong.session_state["roles_wrong"] and start_button(wrong).disabled
    teacher = open_app()
    teacher.text_input(key="roles_guess").input(PASSWORD).run()
    assert not start_button(teacher).disabled
    assert teacher.session_state["roles_guess"] == ""  # the password is not kept in a widget
    assert start_button(open_app()).disabled  # another session stays a viewer


# ---------------------------------------------------------------------- the queue on the pages
def test_a_start_beyond_the_limit_shows_its_place_in_the_queue_on_monitor(runs_root, tiny_config, monkeypatch):  # noqa: F811
    import threading
    monkeypatch.setenv("GAN_STUDIO_MAX_RUNS", "1")
    release, reached = threading.Event(), threading.Event()

    def hold(trainer):
        reached.set()
        release.wait(60)

    busy = store().start(tiny_config(arch="mlp", steps=2), hooks=[hold])
    reached.wait(60)
    waiting = store().start(tiny_config(arch="mlp", steps=2))
    at = open_app("pages/monitor.py", {"run": waiting})
    assert any("position 1" in i.value and busy in i.value for i in at.info)
    assert any(":blue-badge[waiting in the queue]" in m.value for m in at.markdown)
    at.button(key="btn_cancel").click().run()
    assert store().queue() == [] and waiting not in {r["run_id"] for r in store().runs()}
    release.set()
    assert store().wait(busy, 60) == "finished"
    assert not gan_threads()


# ---------------------------------------------------------------------- presenter views
def test_presenter_view_of_a_run_has_big_numbers_and_no_controls(runs_root, tiny_config):  # noqa: F811
    run_id = finished_run(tiny_config)
    at = open_app("pages/monitor.py", {"run": run_id, "present": "1"})
    assert not at.button and not at.selectbox and not at.slider and not at.get("select_slider")
    assert at.get("image") and {m.label for m in at.metric} >= {"Step", "Images / s"}
    assert len(at.get("plotly_chart")) == 2  # losses and D(real)/D(fake)


def test_compare_presenter_puts_two_runs_side_by_side(runs_root, tiny_config):  # noqa: F811
    first, second = finished_run(tiny_config), finished_run(tiny_config, lr_d=0.001)
    at = open_app("pages/compare.py", {"runs": f"{first},{second}", "present": "1"})
    assert not at.button and not at.multiselect
    assert len(at.get("image")) == 2


def test_playground_presenter_has_play_and_step_only(runs_root):  # noqa: F811
    at = open_app("pages/playground.py", {"present": "1", "loss": "wgan-gp"})
    assert labels(at) == {"Play", "Step"} or labels(at) == {"Pause", "Step"}
    assert not at.sidebar.selectbox and not at.checkbox
    assert at.session_state["pg_loss"] == "wgan-gp"


# ---------------------------------------------------------------------- share links
def test_a_train_link_fills_the_form_and_ignores_hostile_values_with_a_note(runs_root):  # noqa: F811
    at = open_app(None, {"preset": "classic-mlp", "lr_d": "0.0005", "batch_size": "lots", "evil": "<script>",
                         "data_root": "/etc"})
    assert at.text_input(key="w_lr_d").value == "0.0005"
    assert at.text_input(key="w_batch_size").value == "128"  # the preset's, the bad value dropped
    note = " ".join(w.value for w in at.warning)
    assert "evil" in note and "batch_size" in note and "data_root" in note
    assert not at.exception


def test_share_links_round_trip_a_config():
    cfg = build_config("classic-mlp", lr_d=0.0005, g_hidden=[64, 64], name="class-demo.1")  # names are run-id safe (security)
    params = config_params(cfg)
    assert params["preset"] == "classic-mlp" and params["lr_d"] == "0.0005" and "batch_size" not in params
    assert config_from_query(params) == (cfg, [])
    assert config_from_query({"config": encode_config(cfg)}) == (cfg, [])
    for hostile in ({"config": "%%%"}, {"config": "x" * 20_000}, {"preset": "nope"}, {"steps": "-1e400"},
                    {"lr_d": "nan"}, {"seed": "1" * 5000}):
        got, notes = config_from_query(hostile)
        assert notes and (got is None or got.validate())


def test_monitor_link_opens_a_step_of_the_history(runs_root, tiny_config):  # noqa: F811
    run_id = finished_run(tiny_config)
    at = open_app("pages/monitor.py", {"run": run_id, "step": "2"})
    assert at.slider(key="mon_step").value == 2 and not at.exception  # the timeline scrubber opens at that step
    assert at.query_params["step"] == "2" and any("Fixed noise at step 2" in str(i.proto) for i in at.get("image"))
    at = open_app("pages/monitor.py", {"run": run_id, "step": "../../etc"})
    assert any("Ignored from the link" in w.value for w in at.warning) and not at.exception
    assert "step" not in at.query_params and at.slider(key="mon_step").value == 4  # the newest step instead


def test_the_run_limit_is_a_teacher_setting_in_the_sidebar(classroom, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_MAX_RUNS", "2")
    viewer = open_app()
    assert store().max_runs == 2
    assert not [n for n in viewer.sidebar.number_input if n.key == "max_runs"]  # a viewer cannot change it
    teacher = AppTest.from_file(APP, default_timeout=120)
    teacher.session_state["roles_teacher"] = True  # unlocked (AppTest shows the sidebar on a first run only)
    teacher.run()
    teacher.sidebar.number_input(key="max_runs").set_value(3).run()
    assert store().max_runs == 3 and not teacher.exception


def test_a_viewer_may_not_fork_a_run(classroom, tiny_config):
    """Issue 18's Fork from step N starts a run: a control, so a viewer sees it disabled and why."""
    run_id = finished_run(tiny_config)
    at = open_app("pages/monitor.py", {"run": run_id})
    fork = next(b for b in at.button if b.label.startswith("Fork from step"))
    assert fork.disabled and "teacher" in fork.help and not at.exception
