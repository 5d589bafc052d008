"""The one RunStore per server process. Kept in this small, stable module on purpose: editing a cached
factory's code makes Streamlit build a new store while the old store's trainer threads run on."""
from __future__ import annotations

import os

import streamlit as st

from gan_core import RunStore
from gan_core.classroom import max_runs_setting, teacher_password, workers_setting
from gan_core.engine.device import device_label, resolve_device


def runs_root() -> str:
    return os.environ.get("GAN_STUDIO_RUNS", "runs")


@st.cache_resource(show_spinner=False)
def _store_for(root: str) -> RunStore:
    workers = workers_setting(classroom=teacher_password(st.secrets) is not None)[0]
    return RunStore(root, max_runs=max_runs_setting()[0], workers=workers)  # the teacher may change max_runs later


def get_store() -> RunStore:
    """Shared by every session and tab of this server; thread-safe."""
    return _store_for(os.path.abspath(runs_root()))


@st.cache_resource(show_spinner=False)
def device_text() -> str:
    return device_label(resolve_device("auto"))


def start_and_watch(config, launch=None) -> None:
    """Start a run (`launch(config)`, default the store's start; a fork passes its own) and open Monitor on it; a
    refusal (bad config, missing data, busy run, no checkpoint, disk) is shown, not raised."""
    from gan_core.config import ConfigError
    from gan_core.errors import StudioError
    from ui import roles
    if not roles.require_control():
        return
    try:
        with st.spinner("Loading data and building the networks…"):
            run_id = (launch or get_store().start)(config)
    except ConfigError as e:
        st.error(str(e))
    except (StudioError, ValueError, OSError) as e:
        st.error(str(e))
    else:
        st.session_state["monitor_run"] = run_id
        st.switch_page("pages/monitor.py")
