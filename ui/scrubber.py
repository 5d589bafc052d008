"""The step scrubber Monitor and Compare share: one slider over a run's steps plus a Live button.

State lives in st.session_state under `<prefix>_live` and `<prefix>_step`, so a page can also jump to a step
(a deep link, a fork)."""
from __future__ import annotations

import streamlit as st


def jump_to(prefix: str, step: int) -> None:
    st.session_state[f"{prefix}_live"] = False
    st.session_state[f"{prefix}_step"] = int(step)


def go_live(prefix: str) -> None:
    st.session_state[f"{prefix}_live"] = True


def _moved(prefix: str) -> None:
    """The slider changed: stop following the newest step, unless it fell to 0 while following it. A page redrawn
    while a live view first drew the slider can reset it to its minimum; that is no one's pick, and step 0 (nothing
    logged yet) is no view to stop at (Monitor opened after Start stayed on step 0 while the run went on)."""
    if st.session_state.get(f"{prefix}_step") == 0 and st.session_state.get(f"{prefix}_live"):
        return
    st.session_state[f"{prefix}_live"] = False


def scrubber(prefix: str, last: int, help: str) -> int | None:
    """Draw the scrubber; the chosen step, or None while following the newest step (Live)."""
    live_key, step_key = f"{prefix}_live", f"{prefix}_step"
    st.session_state.setdefault(live_key, True)
    if last < 1:
        return None
    if step_key not in st.session_state:  # never drawn, or dropped with its widget by a run that did not draw it
        st.session_state[live_key] = True  # (a slider made again starts at 0, a step no one picked): follow the newest
    if st.session_state[live_key] or st.session_state.get(step_key, 0) > last:
        st.session_state[step_key] = last  # before the widget exists: allowed
    left, right = st.columns([8, 1], vertical_alignment="bottom")
    left.slider("Timeline: step", 0, last, key=step_key, help=help, on_change=_moved, args=(prefix,))
    right.button("Live", key=f"{prefix}_golive", on_click=go_live, args=(prefix,), icon=":material/sensors:",
                 disabled=st.session_state[live_key], help="Snap back to the newest step and follow it")
    return None if st.session_state[live_key] else int(st.session_state[step_key])
