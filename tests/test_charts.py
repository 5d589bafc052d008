"""The Monitor charts a class reads: each loss on a scale where it can be read, log ticks in plain numbers,
quality panels whose titles fit and say which way is better."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ui import charts

STEPS = np.arange(0, 500, 5)


def lr_too_high_metrics() -> pd.DataFrame:
    """The shape of the 'learning rate too high' demo: D's loss moves around 1-400, G's in the thousands."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"step": STEPS, "d_loss": 1.4 + 50 * rng.random(len(STEPS)),
                         "g_loss": 3000 + 2000 * rng.random(len(STEPS))})


def line(fig, name):
    return next(t for t in fig.data if t.name == name)


def axis_of(fig, trace):
    return fig.layout[trace.yaxis.replace("y", "yaxis")]


def test_d_loss_has_its_own_scale_when_g_loss_is_in_the_thousands():
    fig = charts.loss_figure(lr_too_high_metrics(), 0.0)
    d, g = line(fig, "D loss"), line(fig, "G loss")
    assert d.yaxis != g.yaxis  # one shared axis flattened D's loss into a line
    assert axis_of(fig, d).title.text == "D loss" and axis_of(fig, g).title.text == "G loss"
    assert d.xaxis != g.xaxis and fig.layout[g.xaxis.replace("x", "xaxis")].matches == "x"  # one step axis


def test_the_healthy_band_sits_on_its_lines_panel():
    df = lr_too_high_metrics()
    reference = pd.DataFrame({"step": STEPS, "g_loss_lo": 1.0, "g_loss_hi": 2.0, "d_loss_lo": 1.0, "d_loss_hi": 1.5})
    fig = charts.with_reference(charts.loss_figure(df, 0.6), reference, ["d_loss", "g_loss"], "fast-mnist")
    band = next(t for t in fig.data if t.name and t.name.startswith("healthy G loss"))
    assert band.yaxis == line(fig, "G loss").yaxis


def test_restorer_l1_gets_a_panel_of_its_own():
    df = lr_too_high_metrics().assign(l1_loss=0.2)
    fig = charts.loss_figure(df, 0.0)
    assert len({line(fig, n).yaxis for n in ("D loss", "G loss", "L1 to the truth (restorers)")}) == 3


def test_gradient_ticks_are_powers_of_ten_in_plain_numbers():
    df = pd.DataFrame({"step": STEPS, "grad_norm_d": np.logspace(-16, 0.3, len(STEPS)),
                       "grad_norm_g": np.logspace(-4, 0.5, len(STEPS))})
    axis = charts.grad_figure(df, 0.0).layout.yaxis
    assert axis.type == "log" and axis.tickmode == "array"
    shown = {v: t for v, t in zip(axis.tickvals, axis.ticktext) if 1e-16 <= v <= 10}
    assert all(np.isclose(np.log10(v), round(np.log10(v))) for v in shown)  # no minor "5" / "2" labels
    assert not any(ch in t for t in shown.values() for ch in "μnpm")  # no SI prefixes
    assert 3 <= len(shown) <= 8
    assert charts.decade_label(-1) == "0.1" and charts.decade_label(-3) == "0.001" and charts.decade_label(3) == "1,000"
    assert charts.decade_label(-16) == "10⁻¹⁶" and charts.decade_label(6) == "10⁶"


def test_quality_panels_say_which_way_is_better_and_their_titles_do_not_overlap():
    df = pd.DataFrame({"step": STEPS, **{c: np.linspace(1, 9, len(STEPS)) for c in charts.QUALITY}})
    fig = charts.quality_figure(df)
    assert "lower distance is better" not in fig.layout.title.text
    titles = {a.text.split("<br>")[0]: a for a in fig.layout.annotations}
    assert "lower is better" in titles["Fréchet distance"].text
    assert "higher is better" in titles["classes covered"].text and "higher is better" in titles["label accuracy"].text
    chart_px, char_px = 560, 7.5  # Monitor's quality chart: 3/5 of a laptop's page; 12-px type
    spans = sorted((a.y, a.x - max(len(s) for s in a.text.split("<br>")) * char_px / 2 / chart_px,
                    a.x + max(len(s) for s in a.text.split("<br>")) * char_px / 2 / chart_px) for a in fig.layout.annotations)
    for (y1, _, right), (y2, left, _) in zip(spans, spans[1:]):
        assert y1 != y2 or right < left, f"panel titles overlap at {y1}"
    panels = [fig.layout[k] for k in fig.layout.to_plotly_json() if k.startswith("yaxis")]
    tops = sorted({round(p.domain[1], 6) for p in panels})
    assert len(tops) >= 2  # seven panels wrap onto rows
