"""Optional packages (pip extras) a run may ask for, and the line that says how to install a missing one."""
from __future__ import annotations

import importlib.util

EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # config field → the module it needs


def install_hint(extra: str) -> str | None:
    """None when the extra's package is importable, else the line that says how to install it."""
    if importlib.util.find_spec(EXTRAS[extra]) is not None:
        return None
    package = "mlflow-skinny" if extra == "mlflow" else extra
    return f"{extra} logging needs the {package} package: pip install {package} (or pip install 'gan-studio[{extra}]')"
