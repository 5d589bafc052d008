"""A click-and-drag pixel grid in plotly: each pixel is a square marker; box or lasso selection paints it.

Streamlit has no drawing widget of its own; a selectable scatter needs no extra component and works in AppTest."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st


def pixel_figure(image: np.ndarray, holes: np.ndarray | None = None, size_px: int = 320) -> go.Figure:
    """(H, W) in [-1, 1] as a grid of grey squares; pixels in `holes` (H, W bool) drawn red."""
    h, w = image.shape
    rows, cols = np.mgrid[0:h, 0:w]
    grey = ((image.reshape(-1) + 1) * 127.5).clip(0, 255).astype(int)
    colours = [f"rgb({g},{g},{g})" for g in grey]
    if holes is not None:
        colours = ["rgb(224,49,49)" if hole else c for c, hole in zip(colours, holes.reshape(-1))]
    marker = dict(symbol="square", size=size_px / max(h, w) * 0.9, color=colours, line=dict(width=0))
    spec = dict(data=[dict(type="scatter", x=cols.reshape(-1), y=rows.reshape(-1), mode="markers", marker=marker,
                           hoverinfo="skip", selected=dict(marker=dict(opacity=1)),
                           unselected=dict(marker=dict(opacity=1)))],
                layout=dict(width=size_px + 20, height=size_px + 20, margin=dict(l=10, r=10, t=10, b=10),
                            xaxis=dict(visible=False, range=[-0.5, w - 0.5]),
                            yaxis=dict(visible=False, range=[h - 0.5, -0.5], scaleanchor="x"),
                            plot_bgcolor="black", dragmode="lasso", showlegend=False))
    return go.Figure(spec)


def painted(event, shape: tuple[int, int]) -> np.ndarray:
    """The pixels a box/lasso selection covers, as an (H, W) bool array."""
    out = np.zeros(shape, dtype=bool)
    points = (event or {}).get("selection", {}).get("point_indices", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "point_indices", []) or []
    flat = out.reshape(-1)
    flat[[i for i in points if 0 <= i < flat.size]] = True
    return out


def pixel_canvas(image: np.ndarray, key: str, holes: np.ndarray | None = None) -> np.ndarray:
    """Show the grid; returns the pixels of a new lasso or box selection, (H, W) bool (a selection stays in the
    chart's state across reruns: it is applied once)."""
    event = st.plotly_chart(pixel_figure(image, holes), key=key, on_select="rerun", selection_mode=("lasso", "box"),
                            config={"displayModeBar": True, "modeBarButtonsToRemove": ["zoom2d", "pan2d", "autoScale2d"]})
    selected = painted(event, image.shape)
    signature = hash(selected.tobytes())
    if st.session_state.get(f"{key}_applied") == signature:
        return np.zeros_like(selected)
    st.session_state[f"{key}_applied"] = signature
    return selected
