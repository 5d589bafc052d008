"""Train: pick a preset or set every hyperparameter, then start a run and jump to Monitor."""
import streamlit as st

from gan_core.config import ConfigError, RunConfig
from gan_core.presets import PRESETS
from ui import form, links, roles
from ui.state import start_and_watch
from ui.text import plain

MAX_CONFIG_MB = 1  # a config.json is about 2 KB; the uploader shows this limit and refuses bigger files

st.title("Train a GAN")
st.caption("Pick a recipe, adjust anything, press Start. Every field explains itself (hover the ?).")


def load_uploaded_config() -> None:
    """The uploader's callback: it runs before the page draws its widgets, the only moment their values may be
    replaced. What the form then shows is exactly what Save wrote and what Start will use."""
    uploaded = st.session_state.get("config_upload")
    if uploaded is not None and not roles.can_control():  # uploads are the teacher's (ui/roles.py), checked here too
        return
    if uploaded is None:
        return
    try:
        if uploaded.size > MAX_CONFIG_MB * 2**20:
            raise ConfigError({"config": f"{uploaded.size:,} bytes is over {MAX_CONFIG_MB} MB; a config is a small "
                                         f"JSON file"})
        cfg = RunConfig.from_json(uploaded.getvalue().decode("utf-8", errors="replace"))
    except ConfigError as e:
        st.session_state["config_load_note"] = ("error", plain(f"{uploaded.name}: " + "; ".join(
            f"{form.label(k) if k in form.FIELDS else k}: {v}" for k, v in e.problems.items())))
        return
    form.load_config(cfg)
    if cfg.preset in PRESETS:
        st.session_state["preset_pick"] = cfg.preset
    st.session_state["config_load_note"] = ("success", f"Loaded {plain(uploaded.name)}: the form now holds exactly its settings.")


links.apply_train_link()  # a share link or a reload (?preset=…&lr_d=…) fills the form once
form.ensure_form()
links.show_train_link_notes()


def fork_banner(fork: dict) -> None:
    """Above the form and Start: what Start will do with a fork, and whose clock it runs on."""
    st.info(f"**Fork** of run {plain(fork['run'])} from step {fork['step']} (its checkpoint at or before step "
            f"{fork['requested']}): Start continues that checkpoint with the settings below, as a new run that "
            f"records its parent. Architecture and data must stay the parent's.", icon=":material/fork_right:")
    limit, elapsed = float(st.session_state[form.FORM].get("max_seconds") or 0), fork.get("elapsed")
    if limit and elapsed is not None:
        left = max(0.0, limit - elapsed)
        st.caption(f":material/timer: The fork continues the parent's training clock: {elapsed:.0f} s had passed at "
                   f"step {fork['step']}, so with Max seconds = {limit:g} it trains for about {left:.0f} s more. "
                   f"Raise Max seconds (or set it to 0 and use Steps) to train it longer.")
    if st.button("Cancel the fork (start from scratch instead)", key="btn_cancel_fork"):
        del st.session_state["fork_from"]
        st.rerun()


fork = st.session_state.get("fork_from")
if fork:
    fork_banner(fork)
names = list(PRESETS)
current = st.session_state[form.FORM].get("preset")
st.selectbox("Preset", names, index=names.index(current) if current in names else 0, format_func=form.preset_label,
             key="preset_pick", on_change=lambda: form.apply_preset(st.session_state["preset_pick"]),
             help="A preset fills every field below with a known recipe; change anything afterwards.")

cfg, problems = form.evaluate()
form.render(problems)
if cfg is not None and not problems:
    links.keep_in_url(links.config_params(cfg), "train_link_applied")  # a reload keeps the form

left, mid, right = st.columns([1, 1, 2])
start = left.button("Start training", type="primary", disabled=bool(problems) or not roles.can_control(),
                    icon=":material/play_arrow:", help=roles.reason() or ("Disabled while any field is invalid"
                                                                           if problems else "Start this run in the background"))
if cfg is not None and not problems:
    mid.download_button("Save config", cfg.to_json(), file_name="config.json", mime="application/json",
                        icon=":material/download:")
if roles.can_control():  # uploads are the teacher's: a viewer's would sit in server memory (ui/roles.py)
    right.file_uploader("Load a config.json", type=["json"], key="config_upload", label_visibility="collapsed",
                        max_upload_size=MAX_CONFIG_MB, on_change=load_uploaded_config,
                        help="A config.json saved here (or from a run folder) fills every field.")
note = st.session_state.pop("config_load_note", None)
if note:
    (st.error if note[0] == "error" else st.success)(note[1])

if cfg is not None and not problems:
    with st.expander("Share this form", icon=":material/link:"):
        links.show_link("A link that opens Train with this config", links.page_url("", links.config_params(cfg)))

if problems:
    st.warning(f"Fix {len(problems)} field{'s' if len(problems) > 1 else ''} before starting: "
               + ", ".join(sorted(form.label(k) if k in form.FIELDS else k for k in problems)))

if start and cfg is not None and not problems:
    if fork:
        from gan_core.runs.fork import fork_run
        from ui.state import get_store

        def launch_fork(config) -> str:
            child = fork_run(get_store(), fork["run"], fork["requested"], **config.to_dict())
            st.session_state.pop("fork_from", None)  # done: the next Start is a fresh run again
            return child

        start_and_watch(cfg, launch_fork)
    else:
        start_and_watch(cfg)
