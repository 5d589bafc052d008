"""The one RunStore per server process. Kept in this small, stable module on purpose: editing a cached
factory's code makes Streamlit build a new store while the old store's trainer threads run on."""
from __future__ import annotations

import os

import streamlit as st

from gan_core import RunStore
from gan_core.trainer import device_label, resolve_device


def runs_root() -> str:
    return os.environ.get("GAN_STUDIO_RUNS", "runs")


@st.cache_resource(show_spinner=False)
def _store_for(root: str) -> RunStore:
    return RunStore(root)


def get_store() -> RunStore:
    """Shared by every session and tab of this server; thread-safe."""
    return _store_for(os.path.abspath(runs_root()))


@st.cache_resource(show_spinner=False)
def device_text() -> str:
    return device_label(resolve_device("auto"))
