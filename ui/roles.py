"""Classroom roles, the one place every page asks "may this session change anything?".

No teacher password set (the default): one local user with full control. Password set: everyone watches
(viewer); a session that enters the password in the sidebar is the teacher and may start, pause, stop, resume,
cancel and upload. Pages hide or disable what a viewer cannot use and say why (`REASON`)."""
from __future__ import annotations

import streamlit as st

from gan_core.classroom import LOGIN, teacher_password
from gan_core.runs.files import hide_paths

REASON = "Only the teacher can do this in classroom mode (unlock in the sidebar)"
TEACHER = "roles_teacher"  # session_state: True once this session entered the password


def _password() -> str | None:
    return teacher_password(st.secrets)


def classroom() -> bool:
    """True when a teacher password is set: everyone is a viewer until they unlock."""
    return _password() is not None


def can_control() -> bool:
    """May this session start, pause, stop, resume, cancel runs or upload files?"""
    return not classroom() or st.session_state.get(TEACHER) is True


def reason() -> str | None:
    """Why a control is disabled for this session (for `help=`), None when it is not."""
    return None if can_control() else REASON


def private_text(text, runs_root) -> str:
    """A run's note, status message or an error, as this session may read it: a classroom viewer gets no absolute
    server path. Notes are written without them (RunRecord); this also covers a planted events.log, an older run's
    notes and the errors raised while reading a run."""
    return str(text) if can_control() else hide_paths(str(text), runs_root)


def require_control() -> bool:
    """Guard for an action: True if allowed, else a short notice (a viewer's click never reaches the store)."""
    if can_control():
        return True
    st.warning(REASON, icon=":material/lock:")
    return False


def _unlock() -> None:
    """Check a guess through the server-wide throttle (gan_core.classroom.LOGIN): all sessions' guesses count together."""
    guess, st.session_state["roles_guess"] = st.session_state.get("roles_guess", ""), ""
    matched, wait = LOGIN.attempt(guess, _password(), who=_who())
    if matched:
        st.session_state[TEACHER] = True
        st.session_state.pop("roles_wrong", None)
    else:
        st.session_state["roles_wrong"], st.session_state["roles_wait"] = True, wait


def _who() -> str:
    """The browser's address for the log line (the proxy's, when one is in front), else "a session"."""
    try:
        ip = st.context.ip_address
    except Exception:  # older Streamlit, or no request behind this run
        ip = None
    return ip[:64] if isinstance(ip, str) and ip else "a session"  # AppTest gives a stand-in object, not an address


def _lock() -> None:
    st.session_state[TEACHER] = False


def sidebar() -> None:
    """The role line and the teacher's unlock / lock control (nothing at all outside classroom mode)."""
    if not classroom():
        return
    if can_control():
        st.caption(":material/key: **Teacher** — you control runs")
        st.button("Lock (back to viewer)", key="roles_lock", on_click=_lock, icon=":material/lock:")
        return
    st.caption(":material/visibility: **Viewer** — you can watch every page and use the 2-D playground")
    with st.popover("Teacher login", icon=":material/key:"):
        st.text_input("Teacher password", type="password", key="roles_guess", on_change=_unlock)
        st.button("Unlock control", key="roles_unlock")
        if st.session_state.get("roles_wrong"):
            wait = st.session_state.get("roles_wait", 0.0)
            st.error("Wrong password" + (f" — too many wrong guesses on this server: the next one is checked in "
                                         f"{wait:.0f} s" if wait >= 1 else ""), icon=":material/block:")
