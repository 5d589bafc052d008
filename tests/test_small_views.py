"""Issue 24 item 11: the history GIF, Compare's ranking and link, and the 2-D playground telling the same story as
Monitor (its colours, its preset names, its messages)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageSequence

from gan_core.engine.pictures import history_gif
from gan_core.playground.session import SCENARIOS as PRESETS
from gan_core.engine.trainer import points_image
from test_app import app, runs_root, store, wait_finished  # noqa: F401  (runs_root is a fixture)
from test_playground_page import at, plane  # noqa: F401  (at is a fixture)


def frames(gif: bytes) -> list[np.ndarray]:
    return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(io.BytesIO(gif)))]


def test_history_gif_skips_the_untrained_grey_grid_and_labels_every_frame_with_its_step():
    grey = np.full((120, 120), 128, np.uint8)
    digit = np.zeros((120, 120), np.uint8)
    digit[30:90, 50:70] = 255
    shown = frames(history_gif([(0, grey), (50, digit), (100, digit)]))
    assert len(shown) == 2  # step 0, G before any update, is left out
    assert shown[0].shape[0] > 120  # a strip above the grid carries the label
    label_50, label_100 = shown[0][:-120], shown[1][:-120]
    assert (label_50 < 100).any() and not np.array_equal(label_50, label_100)  # dark text, and it differs per step
    assert np.array_equal(shown[0][-120:], shown[1][-120:])  # the grids themselves are untouched
    assert len(frames(history_gif([(0, grey)]))) == 1  # a run with only its first grid still has a GIF


def test_compare_ranking_shows_monitors_images_per_s_and_no_none(runs_root, tiny_config):
    image = store().start(tiny_config(arch="mlp", steps=30, log_every=2))
    points = store().start(tiny_config(dataset="ring-8", arch="mlp2d", z_dim=2, grid_size=64, steps=30, log_every=2))
    wait_finished(image), wait_finished(points)
    at = app("pages/compare.py", query={"runs": f"{points},{image}"})
    assert not at.exception, at.exception
    assert at.multiselect(key="cmp_runs").value == [points, image]  # ?runs= without present=1
    table = at.table[0].value
    assert "None" not in table.astype(str).to_numpy() and "nan" not in table.astype(str).to_numpy()
    rates = dict(zip(table.index, table["images/s"]))
    for rid in (image, points):
        monitor = app("pages/monitor.py", query={"run": rid})
        shown = next(m.value for m in monitor.metric if m.label == "Images / s")
        assert rates[rid] == shown
    assert "Fréchet distance" not in table  # no run here measures it: no column of dashes


def test_playground_names_the_minimax_preset_by_what_it_shows_and_stays_in_the_playground(at):  # noqa: F811
    assert "D too strong" not in PRESETS  # it runs the saturating minimax loss: the vanishing-gradient case
    minimax = next(name for name, p in PRESETS.items() if p["preset"] == "2d-d-too-strong")
    assert "minimax" in minimax.lower() and "vanish" in minimax.lower()
    at.selectbox(key="pg_preset").set_value("Vanilla GAN collapses on ring-8")
    at.button(key="pg_load_preset").click().run()
    message = " ".join(i.value for i in at.info)
    assert "Vanilla GAN collapses" in message and "Monitor" not in message
    spec = plane(at)
    real = next(t for t in spec["data"] if t.get("name") == "Real samples")
    image = points_image(np.array([[0.0, 0.0]]), np.zeros((0, 2)), extent=2.0, size=101)
    assert real["marker"]["color"] == "#{:02x}{:02x}{:02x}".format(*image[50, 50])
