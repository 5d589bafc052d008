"""Plotly figures for the metric traces. Inputs are RunSnapshot.metrics DataFrames (already downsampled).

Each figure is described as one plain dict and validated once (`go.Figure(spec)`): building it trace by trace
with add_scatter/update_layout costs ~5× more Python time, and that time is taken from the training thread."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

COLOURS = {"d_loss": "#1f77b4", "g_loss": "#E8590C", "d_real": "#2b8a3e", "d_fake": "#c92a2a",
           "grad_norm_d": "#1f77b4", "grad_norm_g": "#E8590C"}
LABELS = {"d_loss": "D loss", "g_loss": "G loss", "d_real": "D(real)", "d_fake": "D(fake)",
          "grad_norm_d": "‖∇D‖", "grad_norm_g": "‖∇G‖", "fid": "Fréchet distance", "modes_covered": "classes covered",
          "confidence": "top-class confidence", "label_accuracy": "label accuracy",
          "diversity": "diversity (fake / real spread)", "l1_loss": "L1 to the truth (restorers)",
          "psnr": "PSNR of the repair, dB (restorers)"}
QUALITY = ["fid", "modes_covered", "confidence", "label_accuracy", "diversity", "psnr"]


def smooth(series: pd.Series, amount: float) -> pd.Series:
    """TensorBoard-style exponential smoothing; 0 = raw."""
    if amount <= 0 or series.dropna().empty:
        return series
    return series.ewm(alpha=1.0 - min(amount, 0.999), ignore_na=True).mean()


def _layout(title: str, ytitle: str, xtitle: str = "step", height: int = 300, **extra) -> dict:
    return dict(title=dict(text=title, x=0, font=dict(size=15)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                xaxis=dict(title=dict(text=xtitle)), yaxis=dict(title=dict(text=ytitle)), uirevision="keep",
                legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"), **extra)


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


def loss_figure(df: pd.DataFrame, smoothing: float) -> go.Figure:
    return lines(df, ["d_loss", "g_loss", "l1_loss"], "Losses", "loss", smoothing)  # l1_loss: restorer runs only


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


def grad_figure(df: pd.DataFrame, smoothing: float) -> go.Figure:
    fig = lines(df, ["grad_norm_d", "grad_norm_g"], "Gradient norms", "‖∇‖", smoothing)
    fig.layout.yaxis.type = "log"
    return fig


def compare_figure(frames: dict[str, pd.DataFrame], column: str, align: str, smoothing: float) -> go.Figure:
    """One metric of several runs overlaid; x = step or wall-clock seconds."""
    x = "wall_time" if align == "wall time" else "step"
    data = []
    for name, df in frames.items():
        if column not in df or df[column].dropna().empty:
            continue
        d = df[[x, column]].dropna()
        data.append(dict(type="scatter", x=d[x].to_numpy(), y=smooth(d[column], smoothing).to_numpy(), mode="lines",
                         name=name))
    label = LABELS.get(column, column)
    return go.Figure(dict(data=data, layout=_layout(label, label, "seconds of training" if x == "wall_time" else "step",
                                                    height=340)))


def quality_figure(df: pd.DataFrame) -> go.Figure | None:
    """The live quality metrics, one small panel each (None before the first evaluation)."""
    present = [c for c in QUALITY if c in df and df[c].notna().any()]
    if not present:
        return None
    n, gap = len(present), 0.06
    width = (1 - gap * (n - 1)) / n
    data, layout = [], dict(height=240, margin=dict(l=10, r=10, t=50, b=10), uirevision="keep", showlegend=False,
                            title=dict(text="Quality (lower distance is better)", x=0, font=dict(size=15)), annotations=[])
    for i, col in enumerate(present):
        d = df[["step", col]].dropna()
        axis = "" if i == 0 else str(i + 1)
        left = i * (width + gap)
        layout[f"xaxis{axis}"] = dict(domain=[left, left + width], anchor=f"y{axis}")
        layout[f"yaxis{axis}"] = dict(anchor=f"x{axis}", rangemode="tozero")
        layout["annotations"].append(dict(text=LABELS[col], x=left + width / 2, y=1.0, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False))
        data.append(dict(type="scatter", x=d["step"].to_numpy(), y=d[col].to_numpy(), mode="lines+markers",
                         name=LABELS[col], xaxis=f"x{axis}", yaxis=f"y{axis}", line=dict(width=2),
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
