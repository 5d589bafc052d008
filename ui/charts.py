"""Plotly figures for the metric traces. Inputs are RunSnapshot.metrics DataFrames (already downsampled)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

COLOURS = {"d_loss": "#1f77b4", "g_loss": "#E8590C", "d_real": "#2b8a3e", "d_fake": "#c92a2a",
           "grad_norm_d": "#1f77b4", "grad_norm_g": "#E8590C"}
LABELS = {"d_loss": "D loss", "g_loss": "G loss", "d_real": "D(real)", "d_fake": "D(fake)",
          "grad_norm_d": "‖∇D‖", "grad_norm_g": "‖∇G‖", "fid": "Fréchet distance", "modes_covered": "classes covered",
          "confidence": "top-class confidence", "label_accuracy": "label accuracy",
          "diversity": "diversity (fake / real spread)"}
QUALITY = ["fid", "modes_covered", "confidence", "label_accuracy", "diversity"]


def smooth(series: pd.Series, amount: float) -> pd.Series:
    """TensorBoard-style exponential smoothing; 0 = raw."""
    if amount <= 0 or series.dropna().empty:
        return series
    return series.ewm(alpha=1.0 - min(amount, 0.999), ignore_na=True).mean()


def _layout(fig: go.Figure, title: str, ytitle: str, xtitle: str = "step", height: int = 300) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=xtitle, yaxis_title=ytitle, legend=dict(orientation="h", y=1.02, x=1, xanchor="right",
                                                                         yanchor="bottom"), uirevision="keep")
    return fig


def lines(df: pd.DataFrame, columns: list[str], title: str, ytitle: str, smoothing: float = 0.0) -> go.Figure:
    fig = go.Figure()
    for col in columns:
        if col not in df or df[col].dropna().empty:
            continue
        data = df[["step", col]].dropna()
        if smoothing > 0:
            fig.add_scatter(x=data["step"], y=data[col], mode="lines", line=dict(color=COLOURS.get(col), width=1),
                            opacity=0.25, showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=data["step"], y=smooth(data[col], smoothing), mode="lines", name=LABELS.get(col, col),
                        line=dict(color=COLOURS.get(col), width=2))
    return _layout(fig, title, ytitle)


def loss_figure(df: pd.DataFrame, smoothing: float) -> go.Figure:
    return lines(df, ["d_loss", "g_loss"], "Losses", "loss", smoothing)


def scores_figure(df: pd.DataFrame, score_kind: str, smoothing: float) -> go.Figure:
    """D(real) and D(fake): probabilities with the 0.5 'D cannot tell' line, or raw critic scores."""
    if score_kind == "probability":
        fig = lines(df, ["d_real", "d_fake"], "D(real) and D(fake) — probability", "D(x)", smoothing)
        fig.add_hline(y=0.5, line_dash="dot", line_color="gray", annotation_text="0.5: D cannot tell",
                      annotation_position="bottom right")
        fig.update_yaxes(range=[-0.02, 1.02])
        return fig
    return lines(df, ["d_real", "d_fake"], "D(real) and D(fake) — raw critic scores (not probabilities)", "critic score",
                 smoothing)


def grad_figure(df: pd.DataFrame, smoothing: float) -> go.Figure:
    fig = lines(df, ["grad_norm_d", "grad_norm_g"], "Gradient norms", "‖∇‖", smoothing)
    fig.update_yaxes(type="log")
    return fig


def compare_figure(frames: dict[str, pd.DataFrame], column: str, align: str, smoothing: float) -> go.Figure:
    """One metric of several runs overlaid; x = step or wall-clock seconds."""
    x = "wall_time" if align == "wall time" else "step"
    fig = go.Figure()
    for name, df in frames.items():
        if column not in df or df[column].dropna().empty:
            continue
        data = df[[x, column]].dropna()
        fig.add_scatter(x=data[x], y=smooth(data[column], smoothing), mode="lines", name=name)
    return _layout(fig, LABELS.get(column, column), LABELS.get(column, column),
                   "seconds of training" if x == "wall_time" else "step", height=340)


def quality_figure(df: pd.DataFrame) -> go.Figure | None:
    """The live quality metrics, one small panel each (None before the first evaluation)."""
    from plotly.subplots import make_subplots
    present = [c for c in QUALITY if c in df and df[c].notna().any()]
    if not present:
        return None
    fig = make_subplots(rows=1, cols=len(present), subplot_titles=[LABELS[c] for c in present])
    for i, col in enumerate(present, start=1):
        data = df[["step", col]].dropna()
        fig.add_scatter(x=data["step"], y=data[col], mode="lines+markers", name=LABELS[col], showlegend=False,
                        row=1, col=i, line=dict(width=2), marker=dict(size=4))
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=240, margin=dict(l=10, r=10, t=40, b=10), uirevision="keep",
                      title=dict(text="Quality (lower distance is better)", x=0, font=dict(size=15)))
    return fig


def histogram_figure(histogram: list[int], title: str) -> go.Figure:
    """Which digit the evaluator sees in each generated sample: a flat histogram means every class is made."""
    fig = go.Figure(go.Bar(x=[str(k) for k in range(len(histogram))], y=histogram, marker_color="#4c6ef5"))
    expected = sum(histogram) / max(len(histogram), 1)
    fig.add_hline(y=expected, line_dash="dot", line_color="gray", annotation_text="even share",
                  annotation_position="top right")
    return _layout(fig, title, "samples", "class", height=260)
