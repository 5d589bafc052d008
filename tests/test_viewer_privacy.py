"""What a classroom viewer may read (issue 25): no absolute server path in a run's notes, status message or errors,
and no HTML from run data inside a chart (plotly draws <a>, <img> and <b> in titles, legends, hovers)."""
from __future__ import annotations

import json
import re

import pytest
from test_app import runs_root, store  # noqa: F401  (runs_root is a fixture)
from test_app import app as open_app
from test_plain_text import hostile, markdown_fields  # noqa: F401  (hostile is a fixture)

from gan_core.engine.metrics import cache_dir
from gan_core.runs.files import hide_paths

PASSWORD = "correct horse"
SECRET = "/home/teacher/secret-data/MNIST/raw"


@pytest.fixture
def classroom(runs_root, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GAN_STUDIO_TEACHER_PASSWORD", PASSWORD)
    return runs_root


def shown_strings(at) -> list[str]:
    """Every string on the page, escapes undone (plain() escapes Markdown and breaks autolinks)."""
    return [re.sub(r"\\(.)", r"\1", text).replace("\u200b", "") for _, _, text in markdown_fields(at._tree)]


def test_hide_paths_keeps_run_paths_relative_and_cuts_others_to_a_name(tmp_path):
    root = tmp_path / "runs"
    text = (f"saved {root}/r1/checkpoints/step_10.safetensors. data at {SECRET} (missing); tb in file://{root}/r1/tb "
            f"images/s 1/2 a / b, see https://mlflow.example/api/2.0 and '~/private/notes'")
    assert hide_paths(text, root) == ("saved r1/checkpoints/step_10.safetensors. data at …/raw (missing); tb in "
                                      "file:r1/tb images/s 1/2 a / b, see https://mlflow.example/api/2.0 and '…/notes'")


def test_a_viewer_sees_no_absolute_server_path_on_monitor(classroom, tiny_config):
    planted = []

    def note_paths(trainer):  # a note as a checkpoint or tracking failure would write it
        if not planted:
            planted.append(trainer.record.note(f"could not write {trainer.record.dir}/tb: no space; data {SECRET}"))
    run_id = store().start(tiny_config(arch="mlp", steps=4, checkpoint_every=2), hooks=[note_paths])
    assert store().wait(run_id, 120) == "finished" and planted
    run_dir = store().run_dir(run_id)
    assert str(run_dir) not in (run_dir / "events.log").read_text()  # fixed where the note is written
    status = json.loads((run_dir / "status.json").read_text())  # and a status message planted past set_status
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "failed",
                                                     "message": f"OSError: {run_dir}/checkpoints is gone; {SECRET}"}))
    for query in ({"run": run_id}, {"run": run_id, "present": "1"}):
        at = open_app("pages/monitor.py", query)
        text = "\n".join(shown_strings(at))
        if "present" not in query:  # the viewer's own page: the notes and the message are there, their paths not
            assert "(in the server's runs folder)" in text and "could not write" in text and "is gone" in text
        assert str(classroom) not in text and "/home/teacher" not in text, query
        assert str(classroom.resolve()) not in text
        assert str(cache_dir()) not in text  # where the server keeps its quality evaluators


HTML = '<a href="http://x.example">login</a> <img src=x onerror=alert(1)> <b>bold</b>'


def test_run_strings_reach_the_charts_as_text():
    """Compare's legend (run names), Monitor's reference band and class histogram, and the titles every chart
    (presenter view included) builds with _layout: plotly would draw a planted <a>, <img> or <b>."""
    import pandas as pd

    from ui import charts
    df = pd.DataFrame({"step": [0, 10, 20], "d_loss": [1.0, 0.9, 0.8], "g_loss": [0.7, 0.8, 0.9]})
    band = pd.DataFrame({"step": [0, 20], "d_loss_lo": [0.5, 0.5], "d_loss_hi": [1.5, 1.5]})
    figures = {
        "compare": charts.compare_figure({HTML: df, "plain-run": df}, "d_loss", "step", 0.0),
        "monitor band": charts.with_reference(charts.loss_figure(df, 0.0), band, ["d_loss"], HTML),
        "monitor histogram": charts.histogram_figure([3, 4], f"Classes of generated samples ({HTML})"),
        "titles": charts.lines(df, ["d_loss"], HTML, HTML),
    }
    for where, fig in figures.items():
        spec = json.dumps(fig.to_plotly_json())
        assert not re.search(r"<(a|img|b)\b", spec), where
        assert "&lt;a href=" in spec, where  # still there, as text


def test_monitor_compare_and_the_presenter_view_draw_no_tag_from_a_hostile_run_in_a_chart(hostile):
    """Every string field of the run holds <a>, <img> and Markdown (test_plain_text's run): no chart carries a tag."""
    from test_plain_text import open_page
    run_id, twin = hostile
    for page, query in (("pages/monitor.py", {"run": run_id}), ("pages/monitor.py", {"run": run_id, "present": "1"}),
                        ("pages/compare.py", {"runs": f"{run_id},{twin}"}),
                        ("pages/compare.py", {"runs": f"{run_id},{twin}", "present": "1"})):
        at = open_page(page, query)
        specs = [text for kind, field, text in markdown_fields(at._tree) if kind == "plotly_chart" and field == "spec"]
        assert specs, (page, query)
        assert not any(re.search(r"<(a|img|b)\b", s) for s in specs), (page, query)
