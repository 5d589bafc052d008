"""The Restore page (AppTest): pick a run, damage test digits, press Restore, see damaged | repaired | truth and
the numbers beside the naive repair; a mask with no hole is a message, not a traceback."""
from __future__ import annotations

import numpy as np

from test_app import app, runs_root, store  # noqa: F401  (runs_root is a fixture)


def tiny_generator_run(tiny_config) -> str:
    run_id = store().start(tiny_config(steps=2))
    assert store().wait(run_id, timeout=120) == "finished"
    return run_id


def test_restore_page_without_runs_points_to_train(runs_root):
    at = app("pages/restore.py")
    assert any("No image run" in i.value for i in at.info)


def test_restore_page_inpaints_and_super_resolves_beside_the_naive_repair(runs_root, tiny_config):
    run_id = tiny_generator_run(tiny_config)
    at = app("pages/restore.py")
    assert at.selectbox(key="rst_run").value == run_id
    at.slider(key="rst_count").set_value(3).run()
    at.button(key="rst_go").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["method"]) == ["mean fill", "prior"]
    assert np.isfinite(table["PSNR (dB)"]).all() and all(r.endswith("/3") for r in table["right"])
    grid = at.get("image")[0]
    assert grid is not None
    assert any(m.label == "Method" and m.value == "GAN prior" for m in at.metric)

    at.segmented_control(key="rst_task").set_value("superres").run()
    at.button(key="rst_go").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["method"]) == ["bicubic", "prior"]
    assert any(b.label == "Search as GIF" for b in at.get("download_button"))


def test_restore_page_brush_without_holes_is_a_message(runs_root, tiny_config):
    tiny_generator_run(tiny_config)
    at = app("pages/restore.py")
    at.segmented_control(key="rst_mask").set_value("brush").run()
    at.button(key="rst_go").click().run()
    assert not at.exception, at.exception
    assert any("hides no pixel" in e.value for e in at.error)


def test_restore_page_uses_a_trained_restorer_for_its_own_task(runs_root):
    from gan_core import build_config
    run_id = store().start(build_config("superres-mnist", g_features=8, d_features=8, batch_size=16, steps=3,
                                        max_seconds=0, eval_every=0, device="cpu", threads=1))
    assert store().wait(run_id, timeout=120) == "finished"
    at = app("pages/restore.py")
    assert any(m.label == "Method" and m.value == "trained restorer" for m in at.metric)
    assert not any(s.key == "rst_task" for s in at.get("segmented_control"))  # the task is the run's own
    at.slider(key="rst_count").set_value(2).run()
    at.button(key="rst_go").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["method"]) == ["bicubic", "trained"]
