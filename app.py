"""GAN Studio: the Streamlit entry point. Navigation and the sidebar; every page lives in pages/."""
from pathlib import Path

import streamlit as st

from gan_core.threads import one_intra_op_thread_here
from ui.state import device_text, get_store

one_intra_op_thread_here()  # pages compute on one core: an OpenMP pool on a script thread throttles training

st.set_page_config(page_title="GAN Studio", page_icon=":material/blur_on:", layout="wide")

PAGES = [
    ("pages/train.py", "Train", ":material/rocket_launch:"),
    ("pages/monitor.py", "Monitor", ":material/monitoring:"),
    ("pages/latent.py", "Latent explorer", ":material/tune:"),
    ("pages/compare.py", "Compare", ":material/compare:"),
    ("pages/playground.py", "2-D playground", ":material/scatter_plot:"),
    ("pages/learn.py", "Learn", ":material/school:"),
]
here = Path(__file__).parent
nav = st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                     for i, (path, title, icon) in enumerate(PAGES) if (here / path).exists()])


@st.fragment(run_every=2.0)
def live_runs() -> None:
    """The runs training right now, each a link to its Monitor view."""
    live = [r for r in get_store().runs() if r["status"] in ("starting", "running", "paused")]
    st.markdown(f"**Training now:** {len(live) or 'nothing'}")
    for r in live[:8]:
        label = f"{r['name'] or r['arch'] + ' · ' + r['loss']} — step {r['step']}" + (" (paused)" if r["status"] == "paused" else "")
        st.page_link("pages/monitor.py", label=label, icon=":material/play_circle:", query_params={"run": r["run_id"]})


with st.sidebar:
    st.caption(f"Device: **{device_text()}**")
    live_runs()

nav.run()
