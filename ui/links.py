"""Share links: the URL carries a page's state (a Train config, a run and step, playground settings), so a
teacher can put "open this" on a slide. Everything read from a URL is validated like any other input; what
does not pass is dropped with a one-line note, never a traceback."""
from __future__ import annotations

import base64
import json
from dataclasses import fields
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from gan_core.config import ConfigError, RunConfig
from gan_core.presets import PRESETS, build_config
from ui.text import plain

NOT_FROM_LINKS = {"data_root"}  # a server path is never taken from a link
MAX_ENCODED = 8_000  # characters of ?config=…; a whole RunConfig is ~2,000 as base64
NAVIGATION = {"present", "run", "runs", "smooth", "step"}  # other pages' keys: a Train link may carry them harmlessly


def page_url(page: str, params: dict) -> str:
    """An absolute link to `page` ("" = the default page) with `params`, on the address this browser uses."""
    here = urlsplit(st.context.url or "http://localhost:8501/")
    return urlunsplit((here.scheme, here.netloc, "/" + page.strip("/"), urlencode(params), ""))


def link_key(params: dict) -> str:
    """What a page remembers of the link it applied, so it applies each distinct link once."""
    return urlencode(sorted((str(k), str(v)) for k, v in params.items()))


def keep_in_url(params: dict, applied_key: str) -> None:
    """A page's state in its own URL, so a reload restores it the way a share link does; marked as applied, so the
    page does not re-apply what it just wrote. Navigation keys (?present=1, ?run=…) stay."""
    new = {**{k: st.query_params[k] for k in st.query_params if k in NAVIGATION}, **params}
    if {k: st.query_params[k] for k in st.query_params} != new:
        st.query_params.from_dict(new)
    st.session_state[applied_key] = link_key(new)


def show_link(label: str, url: str) -> None:
    """The link in a code box: its copy button copies it (Streamlit draws one on every code block)."""
    st.caption(f"{label} — use the copy button on the right")
    st.code(url, language=None, wrap_lines=True)


# ---------------------------------------------------------------------- Train form
def config_params(cfg: RunConfig) -> dict:
    """The shortest readable query for a config: its preset and the fields that differ from that preset."""
    base = build_config(cfg.preset if cfg.preset in PRESETS else None).to_dict()
    params = {"preset": cfg.preset} if cfg.preset in PRESETS else {}
    for name, value in cfg.to_dict().items():
        if name not in NOT_FROM_LINKS and name != "preset" and value != base.get(name):
            params[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return params


def encode_config(cfg: RunConfig) -> str:
    """The compact form: ?config=<base64url of the JSON of config_params>."""
    return base64.urlsafe_b64encode(json.dumps(config_params(cfg), separators=(",", ":")).encode()).decode().rstrip("=")


def config_from_query(params: dict) -> tuple[RunConfig | None, list[str]]:
    """The config a Train link asks for, or None when it asks for nothing; notes name what was ignored."""
    values, notes = {}, []
    if "config" in params:
        raw = str(params["config"])
        try:
            if len(raw) > MAX_ENCODED:
                raise ValueError("too long")
            decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if not isinstance(decoded, dict):
                raise ValueError("not a set of fields")
            values.update({str(k): v for k, v in decoded.items()})
        except ValueError:
            notes.append("the link's encoded config could not be read")
    known = {f.name for f in fields(RunConfig)}
    for key, value in params.items():
        if key in known:
            values[key] = value
        elif key not in NAVIGATION and key != "config":
            notes.append(f"unknown setting {key[:40]!r}")
    for key in NOT_FROM_LINKS & set(values):
        values.pop(key)
        notes.append(f"{key} is never taken from a link")
    if not values:
        return None, notes
    preset = values.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        notes.append(f"unknown preset {str(preset)[:40]!r}")
        preset = None
    while True:
        try:
            cfg = build_config(preset, **values)
            break
        except ConfigError as e:  # drop every field that does not parse, keep the rest
            bad = [k for k in e.problems if k in values] or list(values)
            notes.extend(f"{k}: {e.problems.get(k, 'not valid here')}" for k in bad)
            for k in bad:
                values.pop(k)
    return cfg, notes


def apply_train_link() -> None:
    """Fill the Train form from the URL once per distinct link (later edits are the user's)."""
    from ui import form
    params = {k: st.query_params[k] for k in st.query_params}
    key = link_key(params)
    if not params or st.session_state.get("train_link_applied") == key:
        return
    st.session_state["train_link_applied"] = key
    cfg, notes = config_from_query(params)
    if cfg is not None:
        form.load_config(cfg)
        if cfg.preset in PRESETS:
            st.session_state["preset_pick"] = cfg.preset
    st.session_state["train_link_notes"] = notes


def show_train_link_notes() -> None:
    notes = st.session_state.get("train_link_notes")
    if notes:
        st.warning(plain("Ignored from the link: " + "; ".join(notes)), icon=":material/link_off:")


# ---------------------------------------------------------------------- Monitor: a step of a run's timeline
def apply_step_link(prefix: str, last: int, what: str) -> None:
    """?step=N moves the timeline scrubber (`prefix`, ui/timeline.py) to step N; a step outside the run gets a
    one-line note and the view follows the newest step. The scrubber writes `step` back, so the URL is the link."""
    from gan_core.runs.timeline import StepError, check_step
    from ui.scrubber import jump_to
    raw = st.query_params.get("step")
    if raw is None:
        return
    try:
        jump_to(prefix, check_step(raw, last, what))
    except StepError as e:
        st.query_params.pop("step", None)
        st.warning(plain(f"Ignored from the link: {e}; showing the newest step instead."), icon=":material/link_off:")


def show_step(at: int | None) -> None:
    """Keep ?step= in the address bar on the scrubber's step (none while it follows the newest step)."""
    if at is None:
        st.query_params.pop("step", None)
    elif st.query_params.get("step") != str(at):
        st.query_params["step"] = str(at)


# ---------------------------------------------------------------------- any dataclass of settings
def settings_from_query(params: dict, settings_cls, defaults) -> tuple[dict, list[str]]:
    """Fields of a settings dataclass (with a problems() method) from a URL: each must parse to its field's type
    and pass the class's own checks; the rest are dropped with a note."""
    by_name = {f.name: f for f in fields(settings_cls)}
    good, notes = {}, []
    for key, raw in params.items():
        if key in NAVIGATION or key == "config":
            continue
        f = by_name.get(key)
        if f is None:
            notes.append(f"unknown setting {key[:40]!r}")
            continue
        default = getattr(defaults, key)
        try:
            value = _parse_like(default, str(raw))
        except ValueError:
            notes.append(f"{key}: {str(raw)[:40]!r} is not a {type(default).__name__}")
            continue
        problem = settings_cls(**{**_asdict(defaults), key: value}).problems().get(key)
        if problem:
            notes.append(problem)
        else:
            good[key] = value
    return good, notes


def _asdict(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _parse_like(default, raw: str):
    if isinstance(default, bool):
        if raw.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return raw.lower() in ("true", "1", "yes", "on")
        raise ValueError(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(raw)
        return value
    return raw
