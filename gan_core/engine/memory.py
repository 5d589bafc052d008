"""Giving freed memory back to the system.

glibc's malloc keeps what a thread frees in that thread's arena for reuse, and Streamlit runs every rerun in a new
script thread: each GAN-prior search left its few hundred MB of freed activations behind in an arena of its own, so
the server grew with every search although nothing was still referenced."""
from __future__ import annotations

import ctypes
import ctypes.util
import sys


def release_freed_memory() -> bool:
    """Return the allocator's free pages in every arena to the system (glibc's malloc_trim); False where there is no
    such call (another C library, another OS)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
