"""`gan-studio`: the console command of an installed GAN Studio, the same as `streamlit run app.py` in a checkout.

Options pass through to `streamlit run` (`gan-studio --server.port 8502`). Streamlit reads `.streamlit/config.toml`
beside app.py, so the installed dashboard keeps its settings whatever the current folder; runs go to ./runs there
(or GAN_STUDIO_RUNS), as in a checkout."""
from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def streamlit_argv(args: list[str]) -> list[str]:
    return ["streamlit", "run", str(APP), *args]


def main(argv: list[str] | None = None) -> int:
    from streamlit.web import cli
    sys.argv = streamlit_argv(sys.argv[1:] if argv is None else argv)
    return cli.main()
