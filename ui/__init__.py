"""Drawing helpers shared by the Streamlit pages. Compute lives in gan_core; this package only draws."""
import streamlit as st


def _leave_the_pages_folder_mode() -> None:
    """Streamlit decides once per server whether this app is a folder of pages (its first mode) or app.py's
    st.navigation: with a pages/ folder it starts in the first, until a run calls st.navigation. So on a fresh
    server whose first visitor opened a page's own address (a shared /monitor?run=… link), that page ran alone,
    without app.py: no teacher login, no runs in the sidebar, a narrow layout and, on Monitor, a timeline at step 0.
    Every page imports this package first: seeing that mode, leave it and run again, through app.py."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit: nothing to correct
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_the_pages_folder_mode()
