"""Issue 24.7: a failure demo's one-click fix opens in Train under its own name and preset, not the failure's."""
from gan_core.presets import build_config
from test_app import app, runs_root, store  # noqa: F401 - runs_root is a fixture


def test_the_fix_opens_in_train_named_fixed_with_the_fix_preset_in_the_box(runs_root):  # noqa: F811
    run_id = store().start(build_config("demo-mode-collapse", name="learn-demo-mode-collapse", steps=250,
                                        device="cpu").validate())
    assert store().wait(run_id, timeout=120) == "finished"
    at = app("pages/train.py")
    at.selectbox(key="preset_pick").select("demo-mode-collapse").run()  # the box as a teacher left it
    at.switch_page("pages/monitor.py").run()
    at.selectbox(key="monitor_pick").select(run_id).run()
    fix = next(b for b in at.button if b.label.startswith("Open the fix in Train"))
    fix.click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="w_name").value == "learn-demo-mode-collapse-fixed"
    assert at.selectbox(key="preset_pick").value == "2d-playground"
    assert at.text_input(key="w_d_hidden").value == "64,64,64"
