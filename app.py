"""GAN Studio: the Streamlit entry point. Navigation and the sidebar; every page lives in pages/."""
import contextlib
import time
from pathlib import Path

import streamlit as st

from gan_core.classroom import MAX_RUNS_CEILING, max_runs_setting, workers_setting
from gan_core.engine.threads import one_intra_op_thread_here
from ui import live as listing
from ui import present, refresh, roles
from ui.state import device_text, get_store

one_intra_op_thread_here()  # pages compute on one core: an OpenMP pool on a script thread throttles training

st.set_page_config(page_title="GAN Studio", page_icon=":material/blur_on:", layout="wide")

PAGES = [
    ("pages/train.py", "Train", ":material/rocket_launch:"),
    ("pages/monitor.py", "Monitor", ":material/monitoring:"),
    ("pages/latent.py", "Latent explorer", ":material/tune:"),
    ("pages/compare.py", "Compare", ":material/compare:"),
    ("pages/restore.py", "Restore", ":material/healing:"),
    ("pages/playground.py", "2-D playground", ":material/scatter_plot:"),
    ("pages/learn.py", "Learn", ":material/school:"),
]
here = Path(__file__).parent
presenting = present.presenting()  # ?present=1: a projector view, no navigation, sidebar or controls
nav = st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                     for i, (path, title, icon) in enumerate(PAGES) if (here / path).exists()],
                    position="hidden" if presenting else "sidebar")


page_drawn_at = time.monotonic()
LIVE_ICONS = {"starting": ":material/hourglass_top:", "running": ":material/play_circle:",
              "paused": ":material/pause_circle:"}


@st.fragment(run_every=refresh.SIDEBAR_FACTOR * refresh.live_interval())
def live_runs() -> None:
    """The runs training right now, each a link to its Monitor view; it changes rarely, so it refreshes at a few
    times the live views' interval (ui/refresh.py)."""
    runs = listing.runs_after(get_store(), page_drawn_at) or get_store().runs()  # fresh when the page is drawn
    live = [r for r in runs if r["status"] in LIVE_ICONS]
    st.markdown(f"**Training now:** {len(live) or 'nothing'}")
    for r in live[:8]:  # the status as the icon: a label's end is cut at the sidebar's width; no step, which
        # trailed the page by a refresh (Monitor has it live)
        st.page_link("pages/monitor.py", label=r["name"] or f"{r['arch']} · {r['loss']}", icon=LIVE_ICONS[r["status"]],
                     help=f"{r['status']}: open it in Monitor", query_params={"run": r["run_id"]})
    run_queue()


def _cancel(run_id: str) -> None:
    if roles.can_control():
        with contextlib.suppress(KeyError):  # it started (or was cancelled) meanwhile
            get_store().cancel(run_id)


def run_queue() -> None:
    """Starts beyond the server's limit wait here, in order, and start by themselves when a slot frees."""
    store = get_store()
    waiting = store.queue()
    if not waiting:
        return
    st.markdown(f"**Waiting:** {len(waiting)} · at most {store.max_runs} train at once")
    for q in waiting:
        after = f" — starts when {q['waits_for']} finishes" if q["waits_for"] else ""
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.page_link("pages/monitor.py", label=f"{q['position']}. {q['name']}{after}", icon=":material/hourglass_top:",
                       query_params={"run": q["run_id"]})
        if roles.can_control():
            right.button("", icon=":material/close:", key=f"cancel_{q['run_id']}", help="Cancel this waiting run",
                         on_click=_cancel, args=(q["run_id"],))


def _set_limit() -> None:
    if roles.can_control():
        get_store().set_max_runs(st.session_state["max_runs"])


def server_settings() -> None:
    """The teacher's knob for a fair server: how many runs train at once (GAN_STUDIO_MAX_RUNS sets the start)."""
    store = get_store()
    if not roles.can_control() or store.max_runs is None:
        return
    with st.expander("Server", icon=":material/dns:"):
        st.number_input("Runs training at once", min_value=1, max_value=MAX_RUNS_CEILING, value=store.max_runs,
                        step=1, key="max_runs", on_change=_set_limit,
                        help="Further Starts wait in a queue and start by themselves when a run ends. "
                             "Default: one run per GPU, or per two CPU cores.")
        for note in (max_runs_setting()[1], workers_setting(roles.classroom())[1]):
            if note:
                st.caption(note)


if not presenting:
    with st.sidebar:
        st.caption(f"Device: **{device_text()}**")
        roles.sidebar()
        live_runs()
        server_settings()

nav.run()
