"""The run-configuration form: one widget per RunConfig field, help text and validation messages from gan_core.

Values live in st.session_state["train_form"] (a plain dict of widget values), because Streamlit forgets the
state of widgets that are not drawn (another page, a hidden field). Widgets copy into it on change."""
from __future__ import annotations

from dataclasses import fields

import streamlit as st

from gan_core.config import ConfigError, RunConfig, field_choices, field_help
from gan_core.data import DATASETS, dataset_info
from gan_core.losses import LOSSES
from gan_core.models import ARCHS, arch_info
from gan_core.presets import PRESETS, build_config
from gan_core.tasks import TASKS

FORM = "train_form"
GROUPS = [
    ("Data", ["dataset", "data_root", "image_size", "channels"]),
    ("Model", ["arch", "z_dim", "noise", "conditional", "g_hidden", "d_hidden", "leaky_slope", "g_features",
               "d_features", "d_norm", "spectral_norm", "init"]),
    ("Loss and regularisers", ["loss", "label_smoothing", "instance_noise", "r1_gamma", "gp_lambda", "clip_value",
                               "n_critic", "g_every", "grad_clip"]),
    ("Optimiser", ["optimizer", "lr_d", "lr_g", "lr_decay", "lr_decay_after", "beta1", "beta2", "batch_size"]),
    ("Length, device and speed", ["steps", "max_seconds", "seed", "device", "precision", "threads", "ema", "compile"]),
    ("Logging", ["log_every", "sample_every", "checkpoint_every", "grid_size", "tensorboard", "mlflow", "name"]),
]
FIELDS = {f.name: f for f in fields(RunConfig)}
GROUPED = {name for _, names in GROUPS for name in names}
EXTRA = [n for n in FIELDS if n not in GROUPED and n != "preset"]  # fields added later land in "More"
ARCH_FIELDS = {name for info in ARCHS.values() for name in info.settings}  # shown only where an entry uses them
LOSS_FIELDS = {name for loss in LOSSES.values() for name in loss.settings}
TASK_FIELDS = {name for task in TASKS.values() for name in task.settings}


def _kind(name: str) -> str:
    t = FIELDS[name].type
    return t if isinstance(t, str) else t.__name__


def is_bool(name: str) -> bool:
    return _kind(name) == "bool"


def to_widget(name: str, value):
    """A config value as its widget shows it (numbers and lists as editable text)."""
    kind = _kind(name)
    if field_choices(name) is not None or kind == "bool":
        return value
    if kind == "list":
        return ",".join(str(v) for v in value)
    if kind == "float":
        return repr(float(value))  # the shortest text that reads back as the same number: a loaded config round-trips
    return str(value)


def load_config(cfg: RunConfig) -> None:
    """Fill the form (and the visible widgets) from a config, e.g. a preset."""
    form = {name: to_widget(name, getattr(cfg, name)) for name in FIELDS if name != "preset"}
    form["preset"] = cfg.preset
    st.session_state[FORM] = form
    if cfg.preset in PRESETS:  # the preset box shows what was loaded (a fix run: its fix, not the failure demo)
        st.session_state["preset_pick"] = cfg.preset
    for name, value in form.items():
        st.session_state[f"w_{name}"] = value


def ensure_form() -> dict:
    if FORM not in st.session_state:
        load_config(build_config())
    return st.session_state[FORM]


def apply_preset(name: str) -> None:
    load_config(build_config(name))


def evaluate() -> tuple[RunConfig | None, dict[str, str]]:
    """(config, {}) when the form is runnable, else (None or config, {field: message})."""
    form = ensure_form()
    try:
        cfg = RunConfig.from_dict(form)
    except ConfigError as e:
        return None, e.problems
    return cfg, cfg.problems()


def _copy(name: str) -> None:
    st.session_state[FORM][name] = st.session_state[f"w_{name}"]
    if name == "dataset":
        _follow_dataset()


def _follow_dataset() -> None:
    """Switching between images and 2-D points brings that kind's working defaults (as the CLI does)."""
    form = st.session_state[FORM]
    try:
        data_kind = dataset_info(form["dataset"]).kind
        arch_kind = arch_info(form["arch"]).kind
    except (ValueError, RuntimeError):
        return
    if data_kind != arch_kind:
        load_config(build_config(dataset=form["dataset"]))
    elif data_kind == "image" and not dataset_info(form["dataset"]).num_classes and form.get("conditional"):
        form["conditional"] = False
        st.session_state["w_conditional"] = False


def relevant(name: str, form: dict) -> bool:
    """Hide the knobs that do nothing for the chosen dataset / architecture / loss: each registry entry declares
    the fields it uses (ArchInfo.settings, Loss.settings, DatasetInfo.needs_data_root)."""
    arch, loss, data = ARCHS.get(form.get("arch")), LOSSES.get(form.get("loss")), DATASETS.get(form.get("dataset"))
    if name in ARCH_FIELDS:
        return arch is None or name in arch.settings
    if name in LOSS_FIELDS:
        return loss is None or name in loss.settings
    if name == "data_root":
        return data is None or data.needs_data_root
    if name in TASK_FIELDS:
        return form.get("task") in TASKS and name in TASKS[form.get("task")].settings
    if name in ("channels", "conditional"):
        return data is None or data.kind != "points"
    return True


AUTO_LABELS = {"image_size": "image size (0 = auto)", "channels": "channels (0 = auto)"}


def label(name: str) -> str:
    """A field's label on screen (batch_size → "batch size"), also used when listing fields to fix."""
    return AUTO_LABELS.get(name, name.replace("_", " "))


def widget(name: str, problems: dict[str, str]) -> None:
    key = f"w_{name}"
    form = st.session_state[FORM]
    if key not in st.session_state:
        st.session_state[key] = form[name]
    kw = dict(key=key, help=field_help(name), on_change=_copy, args=(name,))
    choices = field_choices(name)
    if _kind(name) == "bool":
        st.toggle(label(name), **kw)
    elif choices is not None:
        if st.session_state[key] not in choices:
            st.session_state[key] = choices[0]
        st.selectbox(label(name), choices, **kw)
    else:
        st.text_input(label(name), **kw)
    if name in problems:
        st.error(problems[name], icon=":material/error:")


def render(problems: dict[str, str]) -> None:
    form = ensure_form()
    groups = GROUPS + ([("More", EXTRA)] if EXTRA else [])
    for i, (title, names) in enumerate(groups):
        shown = [n for n in names if relevant(n, form)]
        bad = any(n in problems for n in names)
        with st.expander(title + (" — needs attention" if bad else ""), expanded=i < 4 or bad):
            cols = st.columns(3)
            for j, name in enumerate(shown):
                with cols[j % 3]:
                    widget(name, problems)
    hidden_bad = {k: v for k, v in problems.items() if k in FIELDS and not relevant(k, form)}
    for name, msg in hidden_bad.items():
        st.error(f"{label(name)}: {msg}")


def preset_label(name: str) -> str:
    return f"{name} — {PRESETS[name]['description']}" if name in PRESETS else name
