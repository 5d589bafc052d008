"""Presenter view (?present=1): one run (Monitor), two runs (Compare) or the playground, big and control-free for
a projector. app.py hides the sidebar and navigation; these views draw no buttons, inputs or selectors."""
from __future__ import annotations

import streamlit as st

from gan_core.insight.health import diagnose_snapshot
from gan_core.runs.record import LIVE_STATUSES
from gan_core.runs.store import QUEUED
from ui import charts

# Live views (Monitor, Compare, the presenting view, the sidebar) redraw every 2 s. At 1 s, Chromium drawing
# Monitor took 0.39-0.61 of a 2-core machine's cores and the run trained at 69-91% of its headless speed (median
# 80%, ten runs); at 2 s the browser took 0.26-0.38 and the run 64-105% (median 88%, four runs; noisy machine).
# benchmarks/sessions.py --vs-headless --preset fast-mnist.
REFRESH_S = 2.0
BIG_TEXT = """<style>
[data-testid="stMetricValue"] { font-size: 3.2rem; }
[data-testid="stMetricLabel"] p { font-size: 1.4rem; }
[data-testid="stHeader"], [data-testid="stToolbar"] { display: none; }
.block-container { padding-top: 1rem; }
</style>"""
BIG_FONT = dict(size=22)


def presenting() -> bool:
    return st.query_params.get("present") == "1"


def big_page() -> None:
    """Large type and no header (static CSS only: no user text ever goes through HTML)."""
    st.markdown(BIG_TEXT, unsafe_allow_html=True)


def _big(fig, height: int):
    fig.update_layout(height=height, font=BIG_FONT, title_font=dict(size=28))
    return fig


def _quality(snap) -> tuple[str, str]:
    """(label, value): the best quality figure the run has so far."""
    df = snap.metrics
    for col, label, fmt in (("fid", "Fréchet distance", "{:.1f}"), ("modes_covered", "Classes covered", "{:.0f}")):
        if col in df and df[col].notna().any():
            return label, fmt.format(df[col].dropna().iloc[-1])
    return "Quality", "—"


def _one_line(snap) -> None:
    found = diagnose_snapshot(snap)
    if found:
        d = found[0]
        show = {"error": st.error, "warning": st.warning, "ok": st.success}.get(d.level, st.info)
        show(f"**{d.title}.** {d.explanation.split('. ')[0].rstrip('.')}.", icon=":material/stethoscope:")


def _headline(snap) -> None:
    cfg = snap.config
    name = (cfg.name or f"{cfg.arch} · {cfg.loss} on {cfg.dataset}") if cfg else snap.run_id
    st.markdown(f"## {name} — {snap.status}")
    total = f" / {snap.total_steps}" if snap.total_steps else ""
    label, value = _quality(snap)
    m1, m2, m3 = st.columns(3)
    m1.metric("Step", f"{snap.step}{total}")
    m2.metric("Images / s", f"{snap.images_per_s:,.0f}" if snap.images_per_s else "—")
    m3.metric(label, value)


def run_view(store, run_id: str) -> None:
    """One run, live: big grid, big loss and D(real)/D(fake) curves, big numbers, the diagnosis in a line."""
    big_page()
    live = store.snapshot(run_id).status in LIVE_STATUSES + (QUEUED,)

    @st.fragment(run_every=REFRESH_S if live else None)
    def view() -> None:
        snap = store.snapshot(run_id)
        _headline(snap)
        _one_line(snap)
        left, right = st.columns([1, 1])
        with left:
            if snap.latest_grid is not None:
                st.image(snap.latest_grid, width="stretch", caption=f"step {snap.latest_grid_step}")
            else:
                st.caption("No samples yet.")
        with right:
            if len(snap.metrics):
                st.plotly_chart(_big(charts.loss_figure(snap.metrics, 0.6), 380), key="present_loss", width="stretch",
                                config={"displayModeBar": False, "staticPlot": True})
                st.plotly_chart(_big(charts.scores_figure(snap.metrics, snap.score_kind, 0.6), 380), key="present_scores",
                                width="stretch", config={"displayModeBar": False, "staticPlot": True})
        if live and snap.status not in LIVE_STATUSES + (QUEUED,):
            st.rerun()  # ended: stop refreshing

    view()


def compare_view(store, run_ids: list[str]) -> None:
    """Two (or more) runs side by side: grid and losses each, live."""
    big_page()
    live = any(store.snapshot(r).status in LIVE_STATUSES + (QUEUED,) for r in run_ids)

    @st.fragment(run_every=REFRESH_S if live else None)
    def view() -> None:
        for col, run_id in zip(st.columns(len(run_ids)), run_ids):
            with col:
                snap = store.snapshot(run_id)
                _headline(snap)
                if snap.latest_grid is not None:
                    st.image(snap.latest_grid, width="stretch", caption=f"step {snap.latest_grid_step}")
                if len(snap.metrics):
                    st.plotly_chart(_big(charts.loss_figure(snap.metrics, 0.6), 340), key=f"present_loss_{run_id}",
                                    width="stretch", config={"displayModeBar": False, "staticPlot": True})

    view()


def leave_link(page: str, params: dict) -> None:
    """A plain link back (a URL, not st.page_link: the page may run without the app's navigation)."""
    from ui.links import page_url
    st.markdown(f"[:material/close_fullscreen: Leave presenter view]({page_url(page, params)})")
