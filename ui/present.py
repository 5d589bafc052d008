"""Presenter view (?present=1): one run (Monitor), two runs (Compare) or the playground, big and control-free for
a projector. app.py hides the sidebar and navigation; these views draw no buttons, inputs or selectors."""
from __future__ import annotations

import streamlit as st

from gan_core.runs.record import LIVE_STATUSES
from gan_core.runs.store import QUEUED
from ui import charts, refresh
from ui.live import diagnosis, frame, grid_png, version
from ui.text import plain

# Live views (Monitor, Compare, the presenting view, the sidebar) redraw every 2 s. At 1 s, Chromium drawing
# Monitor took 0.39-0.61 of a 2-core machine's cores and the run trained at 69-91% of its headless speed (median
# 80%, ten runs); at 2 s the browser took 0.26-0.38 and the run 64-105% (median 88%, four runs; noisy machine).
# benchmarks/sessions.py --vs-headless --preset fast-mnist.
# Under load, viewers' live views refresh less often (ui/refresh.py, benchmarks/classroom_load.py).
REFRESH_S = refresh.REFRESH_S
BIG_TEXT = """<style>
[data-testid="stMetricValue"] { font-size: 2.6rem; }
[data-testid="stMetricLabel"] p { font-size: 1.3rem; }
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"] { display: none; }
.block-container { padding-top: 0.75rem; padding-bottom: 0.5rem; }
h2 { padding-top: 0.25rem; }
</style>"""
BIG_FONT = dict(size=20)  # tick labels too: at least 16 px on a 1280×720 projector
# One 1280×720 screen holds the headline, the diagnosis line and a row of grid | losses | D(real)/D(fake)
# (tests/test_present_browser.py measures it in Chromium).
CHART_PX = 400


def presenting() -> bool:
    return st.query_params.get("present") == "1"


def big_page() -> None:
    """Large type and no header (static CSS only: no user text ever goes through HTML)."""
    st.markdown(BIG_TEXT, unsafe_allow_html=True)


def _big(fig, height: int):
    """Projector type: Streamlit's chart theme sets 12-px ticks of its own, so every axis gets its size here."""
    title = fig.layout.title.text or ""
    fig.update_layout(height=height, font=BIG_FONT, title=dict(text=title.split(" — ")[0], font=dict(size=24)),
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(font=dict(size=18)))
    fig.update_xaxes(tickfont=dict(size=18), title_text="")  # "step" goes without saying; the legend needs the room
    fig.update_yaxes(tickfont=dict(size=18), title_font=dict(size=18), nticks=4)
    for note in fig.layout.annotations or ():
        note.font.size = 18
    return fig


def grid_caption(snap, step, near: str = "") -> str:
    """What the run's sample grid at `step` shows (Monitor and the presenter view say the same); `near`: a note
    after the step, such as which step was asked for."""
    cfg = snap.config
    at = f"at step {step}{near}"
    if cfg is None:
        return f"Samples {at}"
    if cfg.task != "generate":  # restore/training.py: a row each of damaged, restored and truth
        return f"Validation digits {at}. Top row: the damaged inputs · middle: G's repairs · bottom: the originals"
    if cfg.is_2d:
        return f"Real points (blue) and G's points (orange) {at}"
    return f"Fixed noise {at}" + (" — column k is digit k" if cfg.conditional else "")


def page_title(snap) -> None:
    """The browser tab (what a projector's window list shows) names the run being presented, not the page."""
    cfg = snap.config
    st.set_page_config(page_title=f"Presenting {(cfg.name if cfg else '') or snap.run_id}"[:80], layout="wide")


def _quality(snap) -> tuple[str, str]:
    """(label, value): the best quality figure the run has so far."""
    df = snap.metrics
    for col, label, fmt in (("fid", "Fréchet distance", "{:.1f}"), ("modes_covered", "Classes covered", "{:.0f}")):
        if col in df and df[col].notna().any():
            return label, fmt.format(df[col].dropna().iloc[-1])
    return "Quality", "—"


@st.cache_resource(max_entries=64, ttl=600, show_spinner=False)
def _shared_curves(key: tuple, height: int, _snap) -> tuple:
    """The big loss and D(real)/D(fake) figures of one step, built once for every projector and viewer."""
    return (charts.shared(_big(charts.loss_figure(_snap.metrics, 0.6), height)),
            charts.shared(_big(charts.scores_figure(_snap.metrics, _snap.score_kind, 0.6), height)))


def _one_line(snap) -> None:
    found = diagnosis(snap)
    if found:
        d = found[0]
        show = {"error": st.error, "warning": st.warning, "ok": st.success}.get(d.level, st.info)
        show(f"**{d.title}.** {d.explanation.split('. ')[0].rstrip('.')}.", icon=":material/stethoscope:")


def _name(snap) -> str:
    cfg = snap.config
    return (cfg.name or f"{cfg.arch} · {cfg.loss} on {cfg.dataset}") if cfg else snap.run_id


def _numbers(snap) -> tuple[str, str, str, str]:
    """(step text, images/s text, quality label, quality value): Monitor's definitions."""
    total = f" / {snap.total_steps}" if snap.total_steps else ""  # as Monitor writes it
    rate = snap.images_per_s
    label, value = _quality(snap)
    return f"{snap.step}{total}", f"{rate:,.0f}" if rate else "—", label, value


def _headline(snap) -> None:
    """The run's name and status beside its numbers, in one row: the charts below must fit a 720-px screen."""
    name = _name(snap)
    step, rate, label, value = _numbers(snap)
    title, m1, m2, m3 = st.columns([5, 2, 2, 2], vertical_alignment="center")
    with title:
        st.markdown(f"## {plain(name)} — {plain(snap.status)}")  # run-folder values: plain text, never Markdown
    m1.metric("Step", step)
    m2.metric("Images / s", rate)
    m3.metric(label, value)


def _stacked_headline(snap) -> None:
    """A half-width column (Compare): the numbers as one heading that wraps, never cut to "360 / …"."""
    name = _name(snap)
    step, rate, label, value = _numbers(snap)
    st.markdown(f"## {plain(name)} — {plain(snap.status)}")
    st.markdown(f"### Step {step} · {rate} images/s · {label} {value}")


def run_view(store, run_id: str) -> None:
    """One run, live: big grid, big loss and D(real)/D(fake) curves, big numbers, the diagnosis in a line."""
    big_page()
    live = store.snapshot(run_id).status in LIVE_STATUSES + (QUEUED,)

    @st.fragment(run_every=refresh.live_interval() if live else None)
    def view() -> None:
        refresh.still_watching()
        snap = frame(store.snapshot(run_id))  # one frame a second for every session (ui/live.py)
        _headline(snap)
        _one_line(snap)
        grid, losses, scores = st.columns([1, 1, 1])
        with grid:
            png = grid_png(store, snap.run_id, snap.latest_grid_step)
            if png is not None:
                st.image(png, width="stretch", output_format="PNG", caption=grid_caption(snap, snap.latest_grid_step))
            else:
                st.caption("No samples yet.")
        if len(snap.metrics):
            loss_fig, scores_fig = _shared_curves(version(snap), CHART_PX, snap)
            losses.plotly_chart(loss_fig, key="present_loss", width="stretch",
                                config={"displayModeBar": False, "staticPlot": True})
            scores.plotly_chart(scores_fig, key="present_scores",
                                width="stretch", config={"displayModeBar": False, "staticPlot": True})
        if live and snap.status not in LIVE_STATUSES + (QUEUED,):
            st.rerun()  # ended: stop refreshing

    page_title(store.snapshot(run_id))
    view()


def compare_view(store, run_ids: list[str]) -> None:
    """Two (or more) runs side by side: grid and losses each, live."""
    big_page()
    st.set_page_config(page_title="Presenting: " + " vs ".join(run_ids)[:70], layout="wide")
    live = any(store.snapshot(r).status in LIVE_STATUSES + (QUEUED,) for r in run_ids)

    @st.fragment(run_every=refresh.live_interval() if live else None)
    def view() -> None:
        refresh.still_watching()
        for col, run_id in zip(st.columns(len(run_ids)), run_ids):
            with col:
                snap = frame(store.snapshot(run_id))
                _stacked_headline(snap)
                grid, losses = st.columns(2)  # side by side: one 720-px screen holds both
                png = grid_png(store, snap.run_id, snap.latest_grid_step)
                if png is not None:
                    grid.image(png, width="stretch", output_format="PNG", caption=grid_caption(snap, snap.latest_grid_step))
                if len(snap.metrics):
                    losses.plotly_chart(_shared_curves(version(snap), CHART_PX, snap)[0], key=f"present_loss_{run_id}",
                                        width="stretch", config={"displayModeBar": False, "staticPlot": True})

    view()


def leave_link(page: str, params: dict) -> None:
    """A plain link back (a URL, not st.page_link: the page may run without the app's navigation)."""
    from ui.links import page_url
    st.markdown(f"[:material/close_fullscreen: Leave presenter view]({page_url(page, params)})")
