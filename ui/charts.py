"""Plotly figures for the metric traces. Inputs are RunSnapshot.metrics DataFrames (already downsampled).

Each figure is described as one plain dict and validated once (`go.Figure(spec)`): building it trace by trace
with add_scatter/update_layout costs ~5× more Python time, and that time is taken from the training thread."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from gan_core.engine.pictures import POINT_RGB

POINT_COLOURS = {name: "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in POINT_RGB.items()}  # real, fake points


def rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


COLOURS = {"d_loss": "#1f77b4", "g_loss": "#E8590C", "d_real": "#2b8a3e", "d_fake": "#c92a2a",
           "grad_norm_d": "#1f77b4", "grad_norm_g": "#E8590C"}
LABELS = {"d_loss": "D loss", "g_loss": "G loss", "d_real": "D(real)", "d_fake": "D(fake)",
          "grad_norm_d": "‖∇D‖", "grad_norm_g": "‖∇G‖", "fid": "Fréchet distance", "modes_covered": "classes covered",
          "confidence": "top-class confidence", "label_accuracy": "label accuracy",
          "diversity": "diversity (fake / real spread)", "hq_percent": "samples on a mode (%)",
          "l1_loss": "L1 to the truth (restorers)", "psnr": "PSNR of the repair, dB (restorers)"}
POINT_LABELS = {**LABELS, "modes_covered": "modes covered"}  # 2-D runs: the mixture's modes, not digit classes
QUALITY = ["fid", "modes_covered", "confidence", "label_accuracy", "diversity", "hq_percent", "psnr"]


def smooth(series: pd.Series, amount: float) -> pd.Series:
    """TensorBoard-style exponential smoothing; 0 = raw."""
    if amount <= 0 or series.dropna().empty:
        return series
    return series.ewm(alpha=1.0 - min(amount, 0.999), ignore_na=True).mean()


def chart_text(text) -> str:
    """A string for a plotly title, legend name, hover or annotation: plotly draws <a href>, <img>-like and <b> tags
    found there, so a value from a run, a link or an upload has its & < > escaped and shows as the text it is."""
    return html.escape(str(text), quote=False)


def _layout(title: str, ytitle: str, xtitle: str = "step", height: int = 300, **extra) -> dict:
    """Legends sit under the plot: at the top right they covered plotly's toolbar. Titles are escaped (chart_text):
    a caller may build one from run data."""
    return dict(title=dict(text=chart_text(title), x=0, font=dict(size=15)), height=height,
                margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(title=dict(text=chart_text(xtitle))),
                yaxis=dict(title=dict(text=chart_text(ytitle))), uirevision="keep",
                legend=dict(orientation="h", y=-0.26, x=0, xanchor="left", yanchor="top"), **extra)


def _traces(df: pd.DataFrame, columns: list[str], smoothing: float, x: str = "step") -> list[dict]:
    traces = []
    for col in columns:
        if col not in df or df[col].dropna().empty:
            continue
        data = df[[x, col]].dropna()
        xs = data[x].to_numpy()
        if smoothing > 0:
            traces.append(dict(type="scatter", x=xs, y=data[col].to_numpy(), mode="lines", opacity=0.25,
                               line=dict(color=COLOURS.get(col), width=1), showlegend=False, hoverinfo="skip"))
        traces.append(dict(type="scatter", x=xs, y=smooth(data[col], smoothing).to_numpy(), mode="lines",
                           name=LABELS.get(col, col), line=dict(color=COLOURS.get(col), width=2)))
    return traces


def lines(df: pd.DataFrame, columns: list[str], title: str, ytitle: str, smoothing: float = 0.0, **layout) -> go.Figure:
    return go.Figure(dict(data=_traces(df, columns, smoothing), layout=_layout(title, ytitle, **layout)))


def with_reference(fig: go.Figure, reference: pd.DataFrame | None, columns: list[str], label: str) -> go.Figure:
    """`fig` with a faint band per column (low to high of a healthy run, gan_core.insight.reference) drawn behind its lines."""
    if reference is None:
        return fig
    bands = []
    for col in columns:
        if f"{col}_lo" not in reference:
            continue
        rows = reference[["step", f"{col}_lo", f"{col}_hi"]].dropna()
        line = next((t for t in fig.data if t.name == LABELS.get(col, col)), None)  # the band goes on its line's panel
        axes = dict(xaxis=line.xaxis or "x", yaxis=line.yaxis or "y") if line is not None else {}
        colour = COLOURS.get(col, "#888888").lstrip("#")
        rgba = f"rgba({int(colour[0:2], 16)}, {int(colour[2:4], 16)}, {int(colour[4:6], 16)}, 0.13)"
        bands.append(dict(type="scatter", x=rows["step"].to_numpy(), y=rows[f"{col}_hi"].to_numpy(), mode="lines",
                          line=dict(width=0), hoverinfo="skip", showlegend=False, **axes))
        bands.append(dict(type="scatter", x=rows["step"].to_numpy(), y=rows[f"{col}_lo"].to_numpy(), mode="lines",
                          line=dict(width=0), fill="tonexty", fillcolor=rgba, hoverinfo="skip",
                          name=chart_text(f"healthy {LABELS.get(col, col)} ({label})"), **axes))
    return go.Figure(dict(data=bands + list(fig.data), layout=fig.layout))


def with_marker(fig: go.Figure | None, step: int | None, name: str = "timeline", colour: str = "#7048e8",
                dash: str = "dash") -> go.Figure | None:
    """A copy of `fig` with a vertical line at `step` (the timeline's, a fork point); the figure itself may be
    shared, so it is left untouched."""
    if fig is None or step is None:
        return fig
    marker = dict(type="line", name=name, xref="x", yref="paper", x0=step, x1=step, y0=0, y1=1,
                  line=dict(color=colour, width=2, dash=dash))
    layout = fig.layout.to_plotly_json()
    layout["shapes"] = [*layout.get("shapes", []), marker]
    return go.Figure(dict(data=list(fig.data), layout=layout))


AXIS_TITLES = {"l1_loss": "L1 loss"}  # a panel's y title must fit its height; the legend has the long name


def panels(df: pd.DataFrame, columns: list[str], title: str, smoothing: float) -> go.Figure:
    """One panel per column, stacked, sharing the step axis, each on its own y scale: on one axis G's loss in the
    thousands flattened D's loss into a line, while the lessons ask the class to read D's loss."""
    shown = [c for c in columns if c in df and df[c].notna().any()]
    layout = _layout(title, "", height=120 + 110 * max(len(shown), 2))
    del layout["yaxis"], layout["xaxis"]
    n, gap = max(len(shown), 1), 0.08
    tall = (1 - gap * (n - 1)) / n
    data = []
    for i, col in enumerate(shown or columns[:1]):
        axis = "" if i == 0 else str(i + 1)
        top = 1 - i * (tall + gap)
        last = i == n - 1
        layout[f"yaxis{axis}"] = dict(domain=[max(top - tall, 0), top], anchor=f"x{axis}",
                                      title=dict(text=AXIS_TITLES.get(col, LABELS.get(col, col))))
        layout[f"xaxis{axis}"] = dict(anchor=f"y{axis}", showticklabels=last, title=dict(text="step" if last else ""),
                                      **({} if i == 0 else {"matches": "x"}))
        for trace in _traces(df, [col], smoothing):
            data.append({**trace, "xaxis": f"x{axis}", "yaxis": f"y{axis}"})
    return go.Figure(dict(data=data, layout=layout))


def loss_figure(df: pd.DataFrame, smoothing: float) -> go.Figure:
    """D's and G's losses (and a restorer's L1), each in its own panel on its own scale."""
    return panels(df, ["d_loss", "g_loss", "l1_loss"], "Losses", smoothing)  # l1_loss: restorer runs only


def scores_figure(df: pd.DataFrame, score_kind: str, smoothing: float) -> go.Figure:
    """D(real) and D(fake): probabilities with the 0.5 'D cannot tell' line, or raw critic scores."""
    if score_kind == "probability":
        half = dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(dash="dot", color="gray"))
        note = dict(xref="paper", x=1, y=0.5, yanchor="top", xanchor="right", showarrow=False,
                    text="0.5: D cannot tell", font=dict(color="gray"))
        fig = lines(df, ["d_real", "d_fake"], "D(real) and D(fake) — probability", "D(x)", smoothing,
                    shapes=[half], annotations=[note])
        fig.layout.yaxis.range = [-0.02, 1.02]
        return fig
    return lines(df, ["d_real", "d_fake"], "D(real) and D(fake) — raw critic scores (not probabilities)", "critic score",
                 smoothing)


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade_label(exponent: int) -> str:
    """10**exponent as a class reads it: 0.001 … 10,000 in plain digits, beyond that 10⁻⁶-style powers (plotly's
    own log ticks mixed SI prefixes like 100μ and 10n with minor ticks labelled 5 and 2)."""
    if -3 <= exponent <= 4:
        return f"{10.0 ** exponent:,.{max(0, -exponent)}f}"
    return "10" + str(exponent).translate(SUPERSCRIPT)


def log_ticks(values) -> dict:
    """Tick settings for a log axis: labelled powers of ten only, at most ~6 in the data's range (every 2nd, 3rd…
    decade over a wide one), listed far beyond it so a reference band that widens the view still gets labels."""
    import math
    finite = [float(v) for v in values if v == v and 0 < float(v) < float("inf")]
    lo, hi = (math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))) if finite else (-3, 1)
    stride = max(1, math.ceil((hi - lo) / 6))
    exponents = range(-40 - (-40 % stride), 41, stride)
    return dict(tickmode="array", tickvals=[10.0 ** e for e in exponents], ticktext=[decade_label(e) for e in exponents])


def grad_figure(df: pd.DataFrame, smoothing: float) -> go.Figure:
    fig = lines(df, ["grad_norm_d", "grad_norm_g"], "Gradient norms", "‖∇‖ (log scale)", smoothing)
    values = [v for c in ("grad_norm_d", "grad_norm_g") if c in df for v in df[c].dropna().to_numpy()]
    fig.layout.yaxis.update(type="log", **log_ticks(values))
    return fig


RUN_COLOURS = ["#1f77b4", "#E8590C", "#2b8a3e", "#9c36b5", "#c92a2a", "#495057", "#f08c00", "#0c8599"]  # distinct hues
SPARSE = {"fid", "modes_covered", "confidence", "label_accuracy", "diversity", "hq_percent"}  # measured now and then


def compare_figure(frames: dict[str, pd.DataFrame], column: str, align: str, smoothing: float) -> go.Figure:
    """One metric of several runs overlaid, each run in its own hue; x = step or wall-clock seconds. Sparse quality
    measurements are drawn as they are (markers, no smoothing); the Fréchet distance on a log axis, since it
    falls by orders of magnitude."""
    x = "wall_time" if align == "wall time" else "step"
    sparse = column in SPARSE
    data = []
    for i, (name, df) in enumerate(frames.items()):
        if column not in df or df[column].dropna().empty:
            continue
        d = df[[x, column]].dropna()
        y = d[column] if sparse else smooth(d[column], smoothing)
        data.append(dict(type="scatter", x=d[x].to_numpy(), y=y.to_numpy(), mode="lines+markers" if sparse else "lines",
                         name=chart_text(name), line=dict(color=RUN_COLOURS[i % len(RUN_COLOURS)], width=2)))
    label = LABELS.get(column, column)
    layout = _layout(label, label, "seconds of training" if x == "wall_time" else "step", height=340)
    layout["yaxis"]["autorange"] = True
    if column == "fid":
        layout["yaxis"]["type"] = "log"
    return go.Figure(dict(data=data, layout=layout))


PANEL_TITLES = {"fid": "Fréchet distance", "modes_covered": "classes covered", "confidence": "confidence",
                "label_accuracy": "label accuracy", "diversity": "diversity", "hq_percent": "on a mode (%)",
                "psnr": "PSNR (dB)"}  # short: a panel is a third of a column wide
BETTER = {"fid": "lower is better", "modes_covered": "higher is better", "confidence": "higher is better",
          "label_accuracy": "higher is better", "diversity": "1 = as varied as real", "hq_percent": "higher is better",
          "psnr": "higher is better"}
QUALITY_PER_ROW = 3  # seven panels in one row squeezed their titles into each other


def quality_figure(df: pd.DataFrame, points: bool = False) -> go.Figure | None:
    """The live quality metrics, one small panel each, at most three to a row, each titled with which way is better
    (None before the first evaluation). points: a 2-D run, whose modes_covered counts the mixture's modes reached."""
    labels = {**PANEL_TITLES, "modes_covered": "modes covered"} if points else PANEL_TITLES
    present = [c for c in QUALITY if c in df and df[c].notna().any()]
    if not present:
        return None
    n = len(present)
    per_row = min(n, QUALITY_PER_ROW)
    rows = -(-n // per_row)
    xgap, panel_px, gap_px = 0.08, 150, 90  # gap: the step ticks of one row and the two-line titles of the next
    plot_px = rows * panel_px + (rows - 1) * gap_px
    width = (1 - xgap * (per_row - 1)) / per_row
    data, layout = [], dict(height=plot_px + 90, margin=dict(l=10, r=10, t=80, b=10), uirevision="keep",
                            showlegend=False, annotations=[],
                            title=dict(text="Mode coverage" if points else "Quality", x=0, y=0.99, yanchor="top",
                                       font=dict(size=15)))
    for i, col in enumerate(present):
        d = df[["step", col]].dropna()
        axis = "" if i == 0 else str(i + 1)
        row, slot = divmod(i, per_row)
        left = slot * (width + xgap)
        top = 1 - row * (panel_px + gap_px) / plot_px
        bottom = max(top - panel_px / plot_px, 0)
        layout[f"xaxis{axis}"] = dict(domain=[left, left + width], anchor=f"y{axis}")
        layout[f"yaxis{axis}"] = dict(domain=[bottom, top], anchor=f"x{axis}", rangemode="tozero")
        layout["annotations"].append(dict(text=f"{labels[col]}<br>({BETTER[col]})", x=left + width / 2, y=top,
                                          xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                                          showarrow=False, font=dict(size=12)))
        data.append(dict(type="scatter", x=d["step"].to_numpy(), y=d[col].to_numpy(), mode="lines+markers",
                         name=labels[col], xaxis=f"x{axis}", yaxis=f"y{axis}", line=dict(width=2),
                         marker=dict(size=4)))
    return go.Figure(dict(data=data, layout=layout))


def histogram_figure(histogram: list[int], title: str) -> go.Figure:
    """Which digit the evaluator sees in each generated sample: a flat histogram means every class is made."""
    expected = sum(histogram) / max(len(histogram), 1)
    even = dict(type="line", xref="paper", x0=0, x1=1, y0=expected, y1=expected, line=dict(dash="dot", color="gray"))
    note = dict(xref="paper", x=1, y=expected, yanchor="bottom", xanchor="right", showarrow=False, text="even share",
                font=dict(color="gray"))
    bars = dict(type="bar", x=[str(k) for k in range(len(histogram))], y=list(histogram), marker=dict(color="#4c6ef5"))
    return go.Figure(dict(data=[bars], layout=_layout(title, "samples", "class", height=260, shapes=[even],
                                                      annotations=[note])))


class SharedFigure(go.Figure):
    """A figure drawn once and sent to many sessions: st.plotly_chart turns a figure into a dict on every rerun
    of every session (`to_dict`, which also packs each array as base64), so the dict is made once here and each
    call gets a shallow copy (the serialiser drops trace uids from it). Treat it as read-only."""

    def to_dict(self):
        if getattr(self, "_shared_dict", None) is None:
            self._shared_dict = super().to_dict()
        frozen = self._shared_dict
        return {**frozen, "data": [dict(trace) for trace in frozen["data"]]}


def shared(fig: go.Figure | None) -> SharedFigure | None:
    """`fig` as a SharedFigure (for a process-wide cache entry), None stays None."""
    if fig is None or isinstance(fig, SharedFigure):
        return fig
    return SharedFigure(dict(data=list(fig.data), layout=fig.layout))
