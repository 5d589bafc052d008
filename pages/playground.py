"""Playground: one small GAN on 2-D points, drawn live — D's surface, G's manifold and gradients, step by step.

The engine (gan_core.playground.session.Playground) lives in st.session_state, one per browser session; the live view
is a fragment that re-runs about once a second while playing. Nothing here runs off the script thread."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, fields

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from gan_core.data import DatasetError
from gan_core.losses import LOSSES, Loss
from gan_core.playground.budget import SHARED_TRAINING
from gan_core.playground.session import (DATASET_CHOICES, SCENARIOS, Playground, PlaygroundSettings, parse_points_csv,
                                         preset_settings, settings_help)
from ui import charts, links, present, roles
from ui.text import plain

REFRESH_S = 1.0
TIME_BUDGET_S = 0.6  # training time per refresh, so drawing keeps up even with big nets
MIN_TRAIN_S = 0.02  # a grant shorter than this is not worth a forward pass: skip this refresh
CLICK_GRID = 41  # invisible markers per axis that turn clicks on the plane into coordinates
LAYERS = {"real": "Real samples", "fake": "Fake samples", "heatmap": "D's output", "arrows": "G's gradients",
          "manifold": "G's manifold", "density": "True density"}
REAL_COLOUR, FAKE_COLOUR = charts.POINT_COLOURS["real"], charts.POINT_COLOURS["fake"]  # as Monitor draws a 2-D run
# D's output from "fake" (0) through "cannot tell" (white) to "real" (1), in the points' own colours
D_SCALE = [[0.0, FAKE_COLOUR], [0.5, "#ffffff"], [1.0, REAL_COLOUR]]
ARROW_COLOUR = "#343a40"  # G's gradients: dark, apart from both kinds of point
DEFAULTS = asdict(PlaygroundSettings())

# ---------------------------------------------------------------------- state
def _key(name: str) -> str:
    return f"pg_{name}"


def settings_to_url() -> None:
    """The settings that differ from the defaults, in the URL: a reload reads them back like a share link."""
    links.keep_in_url({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in _changed_settings().items()},
                      "pg_link_applied")


def _init_state() -> None:
    ss = st.session_state
    for name, value in DEFAULTS.items():
        ss.setdefault(_key(name), value)
    for layer in LAYERS:
        ss.setdefault(_key(f"show_{layer}"), layer != "density")
    ss.setdefault("pg_playing", False)
    ss.setdefault("pg_iters", 300)  # ≈ 0.6 s of training at ~500 it/s, inside the per-refresh time budget
    ss.setdefault("pg_custom", None)  # (n, 2) float32 array of the user's points
    ss.setdefault("pg_walk", None)  # list[SubStep] of the current slow-motion iteration
    ss.setdefault("pg_walk_i", 0)
    ss.setdefault("pg_message", None)
    ss.setdefault("pg_rate", None)


def _settings_from_widgets() -> PlaygroundSettings:
    values = {f.name: st.session_state[_key(f.name)] for f in fields(PlaygroundSettings)}
    return PlaygroundSettings(**values)


def _engine() -> Playground:
    ss = st.session_state
    if "pg_engine" not in ss:
        ss["pg_engine"] = Playground(PlaygroundSettings())
    return ss["pg_engine"]


# ---------------------------------------------------------------------- callbacks (run before the script)
def _apply_preset() -> None:
    name = st.session_state["pg_preset"]
    settings = preset_settings(name)
    for field_name, value in asdict(settings).items():
        st.session_state[_key(field_name)] = value
    st.session_state["pg_reset_now"] = True
    st.session_state["pg_playing"] = True
    st.session_state["pg_walk"] = None
    st.session_state["pg_message"] = f"Preset “{name}”: {here(SCENARIOS[name]['description'])} Playing."


def here(description: str) -> str:
    """A preset's description as the playground tells it: the pointer to what to watch on Monitor (the same entry
    is a Learn demo run) is dropped, since the plane here shows it."""
    return re.sub(r"\s*Monitor: [^.]*\.", "", description).strip()


def _toggle_play() -> None:
    st.session_state["pg_playing"] = not st.session_state["pg_playing"]
    st.session_state["pg_walk"] = None


def _pause() -> None:
    st.session_state["pg_playing"] = False
    st.session_state["pg_walk"] = None


def _reset() -> None:
    st.session_state["pg_reset_now"] = True
    st.session_state["pg_walk"] = None


def _start_walk() -> None:
    st.session_state["pg_playing"] = False
    st.session_state["pg_walk"] = _engine().walkthrough()
    st.session_state["pg_walk_i"] = 0


def _next_substep() -> None:
    if st.session_state["pg_walk_i"] < 5:
        st.session_state["pg_walk_i"] += 1
    else:
        _start_walk()


def _end_walk() -> None:
    st.session_state["pg_walk"] = None


def _upload_csv() -> None:
    upload = st.session_state.get("pg_csv")
    if upload is None or not roles.can_control():  # uploads are the teacher's (ui/roles.py), checked here too
        return
    try:
        pts = parse_points_csv(upload.getvalue(), upload.name)
    except DatasetError as e:
        st.session_state["pg_csv_error"] = str(e)
        return
    st.session_state["pg_csv_error"] = None
    st.session_state["pg_custom"] = pts
    st.session_state[_key("dataset")] = "custom"
    st.session_state["pg_message"] = f"Loaded {len(pts)} points from {plain(upload.name)}; training on them now."


def _points_from_selection(selection) -> np.ndarray:
    """Clicked (or box/lasso-selected) markers of the click grid, as (n, 2) coordinates."""
    pts = [(p["x"], p["y"]) for p in (selection or {}).get("points", []) if "x" in p and "y" in p]
    return np.asarray(pts, dtype=np.float32).reshape(-1, 2)


def _add_clicked_points() -> None:
    event = st.session_state.get("pg_draw")
    new = _points_from_selection(event.get("selection") if event else None)
    if len(new):
        old = st.session_state["pg_custom"]
        st.session_state["pg_custom"] = new if old is None else np.concatenate([old, new])


def _clear_points() -> None:
    st.session_state["pg_custom"] = None
    if st.session_state[_key("dataset")] == "custom":
        st.session_state[_key("dataset")] = "ring-8"


# ---------------------------------------------------------------------- figures
def _polylines(lines) -> tuple[list, list]:
    xs, ys = [], []
    for line in lines:
        xs += line[:, 0].tolist() + [None]
        ys += line[:, 1].tolist() + [None]
    return xs, ys


def _arrows(points: np.ndarray, direction: np.ndarray, extent: float) -> go.Scatter:
    """Segments p → p + d, scaled so the longest is 15% of the plot width; arrow heads at the tips."""
    norm = np.linalg.norm(direction, axis=1)
    scale = 0.3 * extent / max(float(norm.max()) if len(norm) else 0.0, 1e-12)
    tips = points + direction * scale
    xs, ys, sizes = [], [], []
    for p, t in zip(points, tips):
        xs += [float(p[0]), float(t[0]), None]
        ys += [float(p[1]), float(t[1]), None]
        sizes += [0, 9, 0]
    return go.Scatter(x=xs, y=ys, mode="lines+markers", name="G's gradients", hoverinfo="skip",
                      line=dict(color=ARROW_COLOUR, width=1.5),
                      marker=dict(symbol="arrow", angleref="previous", size=sizes, color=ARROW_COLOUR))


def _points(xy: np.ndarray, name: str, colour, size=5, **marker) -> go.Scatter:
    marker = {"line": dict(width=0), **marker}  # scored points bring a black outline
    return go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, marker=dict(color=colour, size=size, **marker))


def _surface_trace(surface: dict) -> go.Heatmap:
    prob = surface["kind"] == "probability"
    z = surface["z"]
    extra = dict(zmin=0.0, zmax=1.0) if prob else dict(zmid=0.0)
    title = "D(x): P(real)" if prob else "critic score"
    return go.Heatmap(x=surface["x"], y=surface["y"], z=z, colorscale=D_SCALE, opacity=0.55, name="D's output",
                      colorbar=dict(title=dict(text=title), len=0.6, thickness=12), hoverinfo="skip", **extra)


def plane_figure(layers: dict, show: dict) -> go.Figure:
    extent = layers["extent"]
    fig = go.Figure()
    if show["heatmap"]:
        fig.add_trace(_surface_trace(layers["surface"]))
    if show["density"]:
        d = layers["density"]
        fig.add_trace(go.Contour(x=d["x"], y=d["y"], z=d["z"], name="True density", showscale=False, ncontours=6,
                                 contours=dict(coloring="lines"), line=dict(width=1), colorscale="Greys",
                                 hoverinfo="skip"))
    if show["manifold"]:
        xs, ys = _polylines(layers["manifold"])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="G's manifold", hoverinfo="skip",
                                 line=dict(color="rgba(90, 90, 90, 0.45)", width=1)))
    if show["real"]:
        fig.add_trace(_points(layers["real"], "Real samples", REAL_COLOUR))
    if show["fake"]:
        fig.add_trace(_points(layers["fake"], "Fake samples", FAKE_COLOUR))
    if show["arrows"]:
        g = layers["gradients"]
        fig.add_trace(_arrows(g["points"], g["direction"], extent))
    return _layout(fig, extent)


def substep_figure(step, extent: float, loss: Loss) -> go.Figure:
    """What one slow-motion stage draws: noise, the mapping, the scores, the arrows or the move."""
    d, fig = step.data, go.Figure()
    if "surface" in d:
        fig.add_trace(_surface_trace(d["surface"]))
    if "z" in d:
        z = d["z"] if d["z"].shape[1] == 2 else np.concatenate([d["z"], np.zeros_like(d["z"])], 1)
        fig.add_trace(_points(z, "noise z", "#999999", size=6))
        if "fake" in d:
            xs, ys = _polylines([np.stack([a, b]) for a, b in zip(z, d["fake"])])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="z ↦ G(z)", hoverinfo="skip",
                                     line=dict(color=charts.rgba(FAKE_COLOUR, 0.25), width=1)))
    if "real" in d:
        colour = d["d_real"] if "d_real" in d else REAL_COLOUR
        fig.add_trace(_points(d["real"], "Real samples", colour, size=7, **_score_marker("d_real" in d, loss)))
    if "fake" in d:
        colour = d["d_fake"] if "d_fake" in d else FAKE_COLOUR
        fig.add_trace(_points(d["fake"], "Fake samples", colour, size=7, symbol="diamond",
                              **_score_marker("d_fake" in d, loss)))
    if "direction" in d:
        fig.add_trace(_arrows(d["fake"], d["direction"], extent))
    if "fake_after" in d:
        xs, ys = _polylines([np.stack([a, b]) for a, b in zip(d["fake_before"], d["fake_after"])])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="move", line=dict(color=ARROW_COLOUR, width=1.5)))
        fig.add_trace(_points(d["fake_before"], "before the update", charts.rgba(FAKE_COLOUR, 0.35), size=6))
        fig.add_trace(_points(d["fake_after"], "after the update", FAKE_COLOUR, size=7))
    if "loss_d" in d:
        fig.add_annotation(x=0.02, y=0.98, xref="paper", yref="paper", showarrow=False, align="left",
                           text=f"D loss = {d['loss_d']:.4f}<br>G loss = {d['loss_g']:.4f}",
                           bgcolor="rgba(255,255,255,0.8)")
    return _layout(fig, extent, title=step.title)


def _score_marker(scored: bool, loss: Loss) -> dict:
    if not scored:
        return {}
    prob = loss.scores == "probability"
    return dict(colorscale=D_SCALE, cmin=0.0 if prob else None, cmax=1.0 if prob else None, showscale=False,
                line=dict(width=1, color="black"))


def _layout(fig: go.Figure, extent: float, title: str | None = None) -> go.Figure:
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
                      uirevision="playground", legend=dict(orientation="h", y=-0.05),
                      xaxis=dict(range=[-extent, extent], zeroline=False, constrain="domain"),
                      yaxis=dict(range=[-extent, extent], zeroline=False, scaleanchor="x", scaleratio=1),
                      plot_bgcolor="white")
    return fig


def draw_figure(points: np.ndarray | None, extent: float) -> go.Figure:
    """The point editor: a faint grid of clickable markers plus your points.

    Why the grid: st.plotly_chart(on_select=...) reports selected trace points only (a click selects one,
    box/lasso select many), never the coordinates of a click on empty canvas. Markers at 6% opacity still take
    clicks. The chart's element id includes its figure, so adding a point redraws it with a fresh selection and
    the same click is never added twice."""
    ticks = np.linspace(-extent, extent, CLICK_GRID)
    gx, gy = np.meshgrid(ticks, ticks)
    fig = go.Figure(go.Scatter(x=gx.ravel().round(3), y=gy.ravel().round(3), mode="markers", name="click to add",
                               marker=dict(size=9, color="rgba(120,120,120,0.06)"), hovertemplate="add (%{x}, %{y})"))
    if points is not None and len(points):
        fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name="your points",
                                 marker=dict(size=7, color=REAL_COLOUR), hoverinfo="skip"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=10, b=10), showlegend=False, clickmode="event+select",
                      xaxis=dict(range=[-extent * 1.05, extent * 1.05]),
                      yaxis=dict(range=[-extent * 1.05, extent * 1.05], scaleanchor="x"))
    return fig


# ---------------------------------------------------------------------- widgets
def _number(name: str, label: str, lo, hi, step=None, fmt=None) -> None:
    st.number_input(label, min_value=lo, max_value=hi, step=step, format=fmt, key=_key(name), help=settings_help(name))


def custom_points_editor() -> None:
    """Drawing and uploading points, under the plane where it has room (the sidebar left it 165 px wide)."""
    with st.expander("Your own points", expanded=st.session_state[_key("dataset")] == "custom"):
        left, right = st.columns([2, 1])
        with right:
            if roles.can_control():  # a viewer's upload would sit in server memory: uploads are the teacher's
                st.file_uploader("Upload a CSV of x, y rows (≤ 1 MB)", type=["csv", "txt"], key="pg_csv",
                                 on_change=_upload_csv, max_upload_size=1)
            else:
                st.caption(f":material/lock: {roles.REASON}.")
            if st.session_state.get("pg_csv_error"):
                st.error(plain(st.session_state["pg_csv_error"]))
            custom = st.session_state["pg_custom"]
            st.caption("Click on the grid to add a point; box- or lasso-select to add a patch of them. "
                       f"{0 if custom is None else len(custom)} points so far. Then pick Data → custom.")
            st.button("Clear my points", on_click=_clear_points, key="pg_clear_points")
        with left:
            st.plotly_chart(draw_figure(custom, 2.5 if custom is None else max(2.5, float(np.abs(custom).max()))),
                            key="pg_draw", on_select=_add_clicked_points, selection_mode=("points", "box", "lasso"),
                            width="stretch")


def sidebar_controls() -> None:
    with st.sidebar:
        st.subheader("Playground")
        st.selectbox("Preset", list(SCENARIOS), key="pg_preset", help="A one-click scenario; it resets and plays.")
        st.button("Load preset", on_click=_apply_preset, width="stretch", key="pg_load_preset")
        st.selectbox("Data", DATASET_CHOICES, key=_key("dataset"), help=settings_help("dataset"))
        if st.session_state[_key("dataset")] == "custom":
            st.caption("Your own points: draw or upload them under the plane.")
        st.selectbox("Loss", list(LOSSES), key=_key("loss"), help=settings_help("loss"),
                     format_func=lambda n: f"{n} — {LOSSES[n].description.split(':')[0].split('(')[0].strip()}")
        c1, c2 = st.columns(2)
        c1.selectbox("Noise dims", [1, 2], key=_key("z_dim"), help=settings_help("z_dim"))
        c2.selectbox("Noise", ["gaussian", "uniform"], key=_key("noise"), help=settings_help("noise"))
        st.markdown("**Generator**")
        c1, c2 = st.columns(2)
        with c1:
            _number("g_layers", "G layers", 1, 6)
        with c2:
            _number("g_width", "G width", 2, 512)
        c1, c2 = st.columns(2)
        c1.selectbox("G optimiser", ["adam", "sgd"], key=_key("optimizer_g"), help=settings_help("optimizer_g"))
        with c2:
            _number("lr_g", "G learning rate", 1e-6, 1.0, step=1e-4, fmt="%.5f")
        st.markdown("**Discriminator**")
        c1, c2 = st.columns(2)
        with c1:
            _number("d_layers", "D layers", 1, 6)
        with c2:
            _number("d_width", "D width", 2, 512)
        c1, c2 = st.columns(2)
        c1.selectbox("D optimiser", ["adam", "sgd"], key=_key("optimizer_d"), help=settings_help("optimizer_d"))
        with c2:
            _number("lr_d", "D learning rate", 1e-6, 1.0, step=1e-4, fmt="%.5f")
        with st.expander("Training and regularisers"):
            _number("n_critic", "D steps per G step", 1, 20)
            _number("batch_size", "Batch size", 2, 4096)
            c1, c2 = st.columns(2)
            with c1:
                _number("beta1", "Adam β1", 0.0, 0.999, step=0.05)
            with c2:
                _number("beta2", "Adam β2", 0.0, 0.9999, step=0.001, fmt="%.4f")
            _number("label_smoothing", "Label smoothing", 0.0, 0.5, step=0.05)
            _number("r1_gamma", "R1 penalty γ", 0.0, 100.0, step=0.5)
            _number("gp_lambda", "Gradient penalty λ (wgan-gp)", 0.0, 100.0, step=1.0)
            _number("clip_value", "Weight clip c (wgan)", 1e-4, 10.0, step=0.005, fmt="%.4f")
            st.checkbox("Spectral norm on D", key=_key("spectral_norm"), help=settings_help("spectral_norm"))
            _number("seed", "Seed", 0, 2**31 - 1)


def sync_engine() -> Playground:
    """Bring the engine in line with the widgets: live settings apply at once, structural ones rebuild."""
    ss, engine = st.session_state, _engine()
    settings = _settings_from_widgets()
    custom = ss["pg_custom"]
    try:
        if ss.pop("pg_reset_now", False):
            engine.reset(settings, custom)
            ss["pg_walk"] = None
        elif engine.apply(settings, custom):
            ss["pg_walk"] = None
    except (DatasetError, ValueError) as e:
        st.warning(plain(f"Keeping the previous settings: {e}"))
    return engine


def apply_link() -> None:
    """A share link (?dataset=ring-8&loss=wgan-gp&lr_d=0.0005…) sets the playground once per link, then plays."""
    ss = st.session_state
    params = {k: st.query_params[k] for k in st.query_params}
    applied = links.link_key(params)
    if not params or ss.get("pg_link_applied") == applied:
        return
    ss["pg_link_applied"] = applied
    good, notes = links.settings_from_query(params, PlaygroundSettings, PlaygroundSettings())
    if good.get("dataset") == "custom":
        good.pop("dataset")
        notes.append("dataset 'custom' needs your own points")
    for name, value in good.items():
        ss[_key(name)] = value
    if good:
        ss["pg_reset_now"], ss["pg_playing"] = True, True
    if notes:
        ss["pg_message"] = plain("Ignored from the link: " + "; ".join(notes))


def _changed_settings() -> dict:
    """What differs from the defaults; drawn points ('custom') do not fit in a URL."""
    return {k: v for k, v in asdict(_settings_from_widgets()).items() if v != DEFAULTS[k] and v != "custom"}


def share_links() -> None:
    changed = _changed_settings()
    with st.expander("Share and present", icon=":material/cast_for_education:"):
        st.markdown(f"[:material/slideshow: Presenter view (big plot, Play and Step only)]"
                    f"({links.page_url('playground', {**changed, 'present': '1'})})")
        links.show_link("A link that opens the playground with these settings", links.page_url("playground", changed))


def present_bar() -> None:
    """The presenter's only controls: Play/Pause and one step."""
    ss = st.session_state
    cols = st.columns([1, 1, 4])
    cols[0].button("Pause" if ss["pg_playing"] else "Play", key="pg_play", on_click=_toggle_play, type="primary",
                   icon=":material/pause:" if ss["pg_playing"] else ":material/play_arrow:", width="stretch")
    if cols[1].button("Step", key="pg_step", on_click=_pause, width="stretch", help="One iteration"):
        _engine().step()
        _engine().flush()


def control_bar(engine: Playground) -> None:
    ss = st.session_state
    cols = st.columns([1, 1, 1, 1.1, 1, 1.3, 1.5], vertical_alignment="bottom")
    cols[0].button("Pause" if ss["pg_playing"] else "Play", key="pg_play", on_click=_toggle_play, type="primary",
                   icon=":material/pause:" if ss["pg_playing"] else ":material/play_arrow:", width="stretch")
    if cols[1].button("Step D", key="pg_step_d", on_click=_pause, width="stretch", help="One update of D only"):
        engine.step_d()
        engine.flush()
    if cols[2].button("Step G", key="pg_step_g", on_click=_pause, width="stretch", help="One update of G only"):
        engine.step_g()
        engine.flush()
    if cols[3].button("Step both", key="pg_step", on_click=_pause, width="stretch",
                      help="One iteration: n_critic D updates, then one G update"):
        engine.step()
        engine.flush()
    cols[4].button("Reset", key="pg_reset", on_click=_reset, width="stretch",
                   help="Back to iteration 0 with fresh weights from the seed")
    cols[5].number_input("Iterations per refresh", 1, 2000, key="pg_iters",
                         help="How many iterations run between two redraws (about once a second): the speed.")
    if ss["pg_walk"] is None:
        cols[6].button("Slow motion", key="pg_walk_start", on_click=_start_walk, width="stretch",
                       icon=":material/slow_motion_video:", help="Walk through one iteration sub-step by sub-step")
    else:
        cols[6].button("Leave slow motion", key="pg_walk_end", on_click=_end_walk, width="stretch")


def layer_toggles() -> dict:
    cols = st.columns(len(LAYERS))
    return {layer: cols[i].checkbox(label, key=_key(f"show_{layer}")) for i, (layer, label) in enumerate(LAYERS.items())}


def metrics_column(m: dict) -> None:
    cols = [st.container() for _ in range(7)]
    fmt = lambda v, f="{:.3f}": "–" if v is None else f.format(v)  # noqa: E731
    cols[0].metric("Iteration", f"{m['iteration']:,}", help=f"{m['d_steps']:,} D steps, {m['g_steps']:,} G steps")
    cols[1].metric("D loss", fmt(m["d_loss"]))
    cols[2].metric("G loss", fmt(m["g_loss"]))
    cols[3].metric("KL(real ‖ fake)", fmt(m["kl"]), help="Between smoothed 64×64 grid histograms of 2,500 real and "
                   "2,500 generated points (nats). Grows when G misses modes.")
    cols[4].metric("JS", fmt(m["js"]), help="Jensen–Shannon divergence on the same grid; at most ln 2 ≈ 0.693.")
    cols[6].metric("G's push", fmt(m["g_push"], "{:.2g}"), help="Mean length of G's gradient arrows, ‖∇x loss_G‖ at "
                   "its points. Near 0 means G gets no learning signal (vanishing gradients).")
    if "modes" in m:
        cols[5].metric("Modes covered", f"{m['modes']} / {m['n_modes']}",
                       delta=f"{m['hq_percent']:.1f}% high quality", delta_color="off", delta_arrow="off",
                       help="VEEGAN protocol on 2,500 samples: a sample is high quality within 3σ of its nearest mode; "
                            "a mode is covered when at least one high-quality sample is nearest to it. "
                            f"PacGAN's stricter count (≥ 20 samples): {m['modes_20']} / {m['n_modes']}.")
    else:
        cols[5].metric("Modes covered", "–", help="Mode metrics exist for the mixtures ring-8 and grid-25.")


def loss_chart(engine: Playground) -> None:
    rows = list(engine.history)[-400:]
    if len(rows) < 2:
        return
    it = [r["iteration"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=it, y=[r["d_loss"] for r in rows], name="D loss", mode="lines"))
    fig.add_trace(go.Scatter(x=it, y=[r["g_loss"] for r in rows], name="G loss", mode="lines"))
    fig.update_layout(height=200, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="iteration",
                      legend=dict(orientation="h", y=1.15), uirevision="losses")
    st.plotly_chart(fig, key="pg_losses", width="stretch")


# ---------------------------------------------------------------------- the page
st.set_page_config(layout="wide")  # the plane needs the room; app.py's title and icon stay
st.title("2-D GAN playground")
st.caption("Watch a GAN learn a 2-D distribution: green = real, purple = fake; the background is what D thinks.")
_init_state()
apply_link()
presenting = present.presenting()
if presenting:
    present.big_page()
else:
    sidebar_controls()
engine = sync_engine()
settings_to_url()
if presenting:
    present_bar()
else:
    control_bar(engine)
if st.session_state["pg_message"]:
    st.info(st.session_state.pop("pg_message"))


@st.fragment(run_every=REFRESH_S if st.session_state["pg_playing"] else None)
def live_view() -> None:
    ss = st.session_state
    engine = _engine()
    plane_col, side = st.columns([3, 1])
    with plane_col:
        show = {layer: ss[_key(f"show_{layer}")] for layer in LAYERS} if presenting else layer_toggles()
        if ss["pg_playing"] and ss["pg_walk"] is None:
            start = time.perf_counter()
            granted = SHARED_TRAINING.take(TIME_BUDGET_S)  # the server's training time, shared by every session
            try:
                if granted >= MIN_TRAIN_S:
                    done = engine.run(ss["pg_iters"], max_seconds=granted)
                    SHARED_TRAINING.give_back(granted - (time.perf_counter() - start))
                    ss["pg_rate"] = done / max(time.perf_counter() - start, 1e-9)
                else:
                    SHARED_TRAINING.give_back(granted)
                    st.caption(":material/hourglass_top: Many playgrounds are training on this server: yours waits "
                               "its share of the time.")
            except Exception as e:  # a bad corner of the settings must not put a traceback on a classroom screen
                ss["pg_playing"] = False
                st.error(f"Training stopped: {type(e).__name__}: {e}. Change a setting or press Reset.")
        walk = ss["pg_walk"]
        if walk is not None:
            step = walk[ss["pg_walk_i"]]
            c1, c2 = st.columns([4, 1])
            c1.info(f"**{step.title}** — {step.sentence}")
            c2.button("Next sub-step" if ss["pg_walk_i"] < 5 else "Another iteration", key="pg_walk_next",
                      icon=":material/skip_next:", on_click=_next_substep, width="stretch")
            fig = substep_figure(step, engine.extent, engine.loss)
        else:
            fig = plane_figure(engine.figure_layers(), show)
        if presenting:
            fig.update_layout(height=820, font=dict(size=20))
        st.plotly_chart(fig, key="pg_plane", width="stretch")
    with side:
        metrics_column(engine.metrics())
        status = "playing" if ss["pg_playing"] else "paused"
        rate = f" · {ss['pg_rate']:,.0f} iterations/s" if ss["pg_playing"] and ss["pg_rate"] else ""
        st.caption(f"Status: {status}{rate} · {engine.d_steps:,} D steps, {engine.g_steps:,} G steps · "
                   f"data `{engine.settings.dataset}` · loss `{engine.settings.loss}` · "
                   f"{engine.settings.n_critic} D step(s) per G step")
        loss_chart(engine)


live_view()
if presenting:
    present.leave_link("playground", {})
else:
    custom_points_editor()
    share_links()
