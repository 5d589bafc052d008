"""Train: pick a preset or set every hyperparameter, then start a run and jump to Monitor."""
import streamlit as st

from gan_core.config import PRESETS, ConfigError, RunConfig
from ui import form, links, roles
from ui.state import start_and_watch

st.title("Train a GAN")
st.caption("Pick a recipe, adjust anything, press Start. Every field explains itself (hover the ?).")

links.apply_train_link()  # a share link (?preset=…&lr_d=…) fills the form once
form.ensure_form()
links.show_train_link_notes()
names = list(PRESETS)
current = st.session_state[form.FORM].get("preset")
st.selectbox("Preset", names, index=names.index(current) if current in names else 0, format_func=form.preset_label,
             key="preset_pick", on_change=lambda: form.apply_preset(st.session_state["preset_pick"]),
             help="A preset fills every field below with a known recipe; change anything afterwards.")

cfg, problems = form.evaluate()
form.render(problems)

left, mid, right = st.columns([1, 1, 2])
start = left.button("Start training", type="primary", disabled=bool(problems) or not roles.can_control(),
                    icon=":material/play_arrow:", help=roles.reason() or ("Disabled while any field is invalid"
                                                                           if problems else "Start this run in the background"))
if cfg is not None and not problems:
    mid.download_button("Save config", cfg.to_json(), file_name="config.json", mime="application/json",
                        icon=":material/download:")
uploaded = right.file_uploader("Load a config.json", type=["json"], key="config_upload", label_visibility="collapsed")
if uploaded is not None and st.session_state.get("loaded_upload") != uploaded.file_id:
    st.session_state["loaded_upload"] = uploaded.file_id
    try:
        if uploaded.size > 100_000:
            raise ConfigError({"config": f"{uploaded.name} is {uploaded.size} bytes; a config is a small JSON file"})
        form.load_config(RunConfig.from_json(uploaded.getvalue().decode("utf-8", errors="replace")))
        st.rerun()
    except ConfigError as e:
        st.error(f"{uploaded.name}: {e}")

if cfg is not None and not problems:
    with st.expander("Share this form", icon=":material/link:"):
        links.show_link("A link that opens Train with this config", links.page_url("", links.config_params(cfg)))

if problems:
    st.warning(f"Fix {len(problems)} field{'s' if len(problems) > 1 else ''} before starting: "
               + ", ".join(sorted(problems)))

fork = st.session_state.get("fork_from")
if fork:
    st.info(f"**Fork** of run `{fork['run']}` from step {fork['step']} (its checkpoint at or before step "
            f"{fork['requested']}): Start continues that checkpoint with the settings above, as a new run that "
            f"records its parent. Architecture and data must stay the parent's.", icon=":material/fork_right:")
    if st.button("Cancel the fork (start from scratch instead)", key="btn_cancel_fork"):
        del st.session_state["fork_from"]
        st.rerun()

if start and cfg is not None and not problems:
    if fork:
        from gan_core.fork import fork_run
        from ui.state import get_store

        def launch_fork(config) -> str:
            child = fork_run(get_store(), fork["run"], fork["requested"], **config.to_dict())
            st.session_state.pop("fork_from", None)  # done: the next Start is a fresh run again
            return child

        start_and_watch(cfg, launch_fork)
    else:
        start_and_watch(cfg)
