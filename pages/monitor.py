"""Monitor: one run's progress, curves and fixed-noise grids, live; pause/resume/stop; downloads."""
import time

import streamlit as st

from gan_core.config import ConfigError
from gan_core.engine.metrics import cache_help, supports
from gan_core.engine.pictures import history_gif
from gan_core.errors import StudioError
from gan_core.insight.diagnosis import fix_config, mixture_modes
from gan_core.insight.memorisation import check_run
from gan_core.runs.export import script_name
from gan_core.runs.fork import checkpoint_step, forkable_step
from gan_core.runs.record import LIVE_STATUSES
from gan_core.runs.store import QUEUED
from gan_core.runs.timeline import as_of, quality_at
from ui import charts, form, links, live, present, refresh, roles
from ui.scrubber import scrubber
from ui.state import get_store
from ui.text import plain

STATUS_BADGE = {"starting": ("blue", "starting"), "running": ("green", "running"), "paused": ("orange", "paused"),
                "finished": ("violet", "finished"), "stopped": ("gray", "stopped"), "failed": ("red", "failed"),
                "diverged": ("red", "diverged"), "interrupted": ("orange", "interrupted"),
                QUEUED: ("blue", "waiting in the queue"), "cancelled": ("gray", "cancelled")}
WATCHED = LIVE_STATUSES + (QUEUED,)  # statuses that change by themselves: the view refreshes
MAX_GIF_FRAMES = 120
DEFAULT_SMOOTHING = 0.6

store = get_store()
drawn_at = time.monotonic()
runs = store.runs()
if not runs:
    st.title("Monitor")
    st.info("No runs yet. Start one on the Train page, or pick a one-click demo on the Learn page.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/rocket_launch:")
    st.stop()

ids = [r["run_id"] for r in runs]
by_id = {r["run_id"]: r for r in runs}
# A link (?run=…) or the Start button asks for a run: follow each new request once, then respect the user's pick.
for wanted in (st.query_params.get("run"), st.session_state.get("monitor_run")):
    if wanted in ids and wanted != st.session_state.get("monitor_shown"):
        st.session_state["monitor_pick"] = wanted
        break
if st.session_state.get("monitor_pick") not in ids:
    st.session_state["monitor_pick"] = ids[0]
if present.presenting():  # ?run=<id>&present=1: the projector view, nothing to click
    shown = st.query_params.get("run") if st.query_params.get("run") in ids else ids[0]
    present.run_view(store, shown)
    present.leave_link("monitor", {"run": shown})
    st.stop()
st.title("Monitor")


def run_label(rid: str) -> str:
    """The run's id only: a status in this label went stale (the browser keeps the chosen entry's text until the
    choice changes), so the status is the badge under the selector, refreshed every 2 s."""
    return rid


if "mon_smoothing" not in st.session_state:  # a fresh session (a reload): the URL may hold the smoothing
    try:
        st.session_state["mon_smoothing"] = min(max(float(st.query_params.get("smooth", DEFAULT_SMOOTHING)), 0.0), 0.99)
    except ValueError:
        st.session_state["mon_smoothing"] = DEFAULT_SMOOTHING
run_id = st.selectbox("Run", ids, format_func=run_label, key="monitor_pick",
                      help="Every run in the runs folder, newest first. Its status is the badge below; live runs are "
                           "also listed in the sidebar.")
st.session_state["monitor_run"] = st.session_state["monitor_shown"] = run_id
from_link = st.query_params.get("run") == run_id  # before the address follows a pick made here
st.query_params["run"] = run_id
snap = store.snapshot(run_id)
was_live = snap.status in WATCHED
if st.session_state.get("mon_step_run") != run_id:  # another run: follow it live, or go to its ?step= link
    st.session_state["mon_step_run"], st.session_state["mon_live"] = run_id, True
    if from_link:
        links.apply_step_link("mon", snap.step, f"run {run_id}")
    else:
        st.query_params.pop("step", None)  # that step was another run's
statuses_drawn = {r["run_id"]: r["status"] for r in runs}
any_live = any(status in WATCHED for status in statuses_drawn.values())


def figures_for(snap, smoothing: float):
    return live.curve_figures(snap, smoothing, bool(st.session_state.get("mon_reference")))


@st.cache_data(max_entries=32, show_spinner=False)
def run_script(run_id: str, config_key: str) -> tuple[str | None, str]:
    """(the run as a plain PyTorch script, or None; why not). Cached per run and config."""
    try:
        return store.handle(run_id).script(), ""
    except (StudioError, KeyError) as e:
        return None, str(e)


def fmt_seconds(s) -> str:
    if s is None:
        return "—"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def open_fix(snap, finding) -> None:
    """Load the suggested fix into the Train form: what `python -m gan_core train --fix-of RUN_DIR` runs."""
    try:
        form.load_config(fix_config(snap.config, finding))
    except (ConfigError, ValueError) as e:
        st.error(plain(roles.private_text(e, store.root)))
        return
    st.switch_page("pages/train.py")


def health(snap) -> None:
    """The plain-words diagnosis (the words `python -m gan_core diagnose` prints), its evidence, and a button that
    opens the suggested fix on the Train page."""
    show = {"error": st.error, "warning": st.warning, "ok": st.success, "info": st.info}
    for i, d in enumerate(live.diagnosis(snap)):
        show.get(d.level, st.info)(d.text, icon=":material/stethoscope:")
        if d.evidence:
            st.caption(f"Evidence (step {d.step}): " + ", ".join(f"{k} = {v}" for k, v in d.evidence.items()))
        if d.fix_preset or d.fix_settings:
            what = d.fix_preset or ", ".join(f"{k}={v}" for k, v in d.fix_settings.items())
            if st.button(f"Open the fix in Train ({what})", key=f"fix_{d.code}_{i}", icon=":material/build:"):
                open_fix(snap, d)


def quality(snap, at: int | None = None) -> None:
    """Live quality metrics (issue: loss curves alone don't say whether a GAN learns); as of step `at` when scrubbed."""
    dataset = snap.config.dataset
    n_modes = mixture_modes(dataset)
    if n_modes:
        fig = charts.with_marker(figures_for(snap, st.session_state.get("mon_smoothing", DEFAULT_SMOOTHING))[3], at)
        if fig is not None:
            st.markdown(f"**Mode coverage** — of the {n_modes} modes, measured on the fixed-noise samples at every grid "
                        f"(a mode counts when a sample lies within 3σ of it)")
            st.plotly_chart(fig, key="mon_quality", width="stretch")
        return
    if not supports(dataset):
        return
    evaluation = (snap.extra or {}).get("eval") or {}
    fig = charts.with_marker(figures_for(snap, st.session_state.get("mon_smoothing", DEFAULT_SMOOTHING))[3], at)
    if at is not None:
        then = quality_at(snap.metrics, at)
        st.markdown(f"**Quality as of step {at}**" + (f" (measured at step {then['step']})" if then else ""))
        if not then:
            st.caption("No quality measurement yet at that step.")
        else:
            q1, q2, q3, q4 = st.columns(4)
            q1.metric("Fréchet distance", f"{then.get('fid', float('nan')):.2f}")
            q2.metric("Classes covered", f"{then.get('modes_covered', float('nan')):.0f}")
            q3.metric("Confidence", f"{then.get('confidence', float('nan')):.2f}")
            q4.metric("Diversity", f"{then.get('diversity', float('nan')):.2f}")
        if fig is not None:
            st.plotly_chart(fig, key="mon_quality", width="stretch")
        return
    if fig is None and not evaluation:
        if snap.config.eval_every:
            st.caption(f"Quality metrics appear after the first evaluation (every {snap.config.eval_every} steps).")
        return
    st.markdown("**Quality** — measured by a small digit classifier on generated samples")
    left, right = st.columns([3, 2])
    if fig is not None:
        left.plotly_chart(fig, key="mon_quality", width="stretch")
    if evaluation.get("histogram"):
        label = "final" if evaluation.get("final") else f"step {evaluation.get('step')}"
        right.plotly_chart(live.histogram(live.version(snap), tuple(evaluation["histogram"]),
                                            f"Classes of generated samples ({label})"), key="mon_hist", width="stretch")
        right.caption(f"{plain(evaluation.get('modes_text', ''))} · FID {evaluation.get('fid', float('nan')):.2f} · "
                      f"{evaluation.get('num_samples', '?')} samples")


@st.cache_data(max_entries=16, show_spinner=False)
def copying_check(run_id: str, checkpoint: str):
    return check_run(store.handle(run_id).dir, checkpoint=checkpoint)


def copying(snap) -> None:
    """Is it copying? Each sample beside its nearest training images, and one memorisation score."""
    st.subheader("Is it copying?")
    dataset = snap.config.dataset
    if not supports(dataset):
        st.info(f"The copying check compares samples with training images in the quality evaluator's feature space, "
                f"which needs a labelled image dataset; this run trains on {plain(dataset)}.")
        return
    if not snap.checkpoints:
        st.caption("The check uses the newest checkpoint; this run has none yet.")
        return
    wanted = (run_id, snap.checkpoints[-1])
    if st.button("Check for copying", key="btn_copying", icon=":material/content_copy:",
                 help="500 samples of the newest checkpoint vs every training image (a few seconds)"):
        st.session_state["copying_for"] = wanted
    if st.session_state.get("copying_for") != wanted:
        return
    try:
        with st.spinner("Comparing samples with the training set…"):
            result, view = copying_check(*wanted)
    except StudioError as e:
        st.error(plain(roles.private_text(e, store.root)))
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Memorisation score", f"{result.score:.1%}", help="Share of samples nearer to a training image than 95% of "
              f"fresh real images are. Real images score {result.real_baseline:.0%}; copying scores near 100%.")
    c2.metric("Median distance, samples", f"{result.sample_median:.2f}")
    c3.metric("Median distance, real images", f"{result.real_median:.2f}")
    (st.warning if result.score > 2 * result.real_baseline else st.success)(result.verdict.capitalize() + ".")
    left, right = st.columns([2, 3])
    left.image(view.image, width="stretch", caption="Each row: a sample (left), then its nearest training images")
    right.markdown("\n".join(f"{i + 1}. " + " · ".join(f"{d:.2f}" for d in row) for i, row in enumerate(view.distances)))
    right.caption(f"Distances in the evaluator's feature space; {result.num_samples} samples, "
                  f"{result.training_images:,} training images, the checkpoint of step "
                  f"{checkpoint_step(snap.checkpoints[-1]):,}.")


def fork_here(snap, at: int | None) -> None:
    """Fork from the scrubber's step: the Train form opens with this run's settings; Start there forks."""
    info = live.fork(store, snap.run_id)
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if info:
        changed = ", ".join(f"{k}={v}" for k, v in (info.get("changed") or {}).items())
        c2.caption(f"Forked from {plain(info['parent'])} at step {info['fork_step']}"
                   + (f" · changed: {plain(changed)}" if changed else ""))
        if c2.button("Compare with its parent", key="btn_cmp_parent", icon=":material/compare_arrows:"):
            st.session_state["cmp_runs"] = [snap.run_id, info["parent"]]
            st.switch_page("pages/compare.py")
    wanted = snap.step if at is None else at
    start = forkable_step(snap.checkpoints, wanted) if snap.checkpoints else None
    if not snap.checkpoints:
        why = "Forking needs a checkpoint; this run has none yet"
    elif start is None:
        why = (f"Forking needs a checkpoint at or before the chosen step; this run's first is at step "
               f"{checkpoint_step(snap.checkpoints[0]):,}: move the timeline there or later")
    else:
        why = ("A new run from this run's checkpoint at step " + f"{start:,}"
               + (f" (the newest at or before step {wanted:,})" if start != wanted else "")
               + ", with settings you change on the Train page")
    if c1.button(f"Fork from step {start}" if start is not None else "Fork from step …", key="btn_fork",
                 icon=":material/fork_right:", disabled=start is None or not roles.can_control(),
                 help=roles.reason() or why):
        if not roles.require_control():  # a viewer may not fork (Start on Train checks again)
            return
        try:
            start, _ = store.handle(snap.run_id).fork_point(wanted)
        except StudioError as e:
            st.error(plain(roles.private_text(e, store.root)))
            return
        form.load_config(snap.config)
        clock = snap.metrics.loc[snap.metrics["step"] <= start, "wall_time"].dropna() if len(snap.metrics) else []
        st.session_state["fork_from"] = {"run": snap.run_id, "step": start, "requested": wanted,
                                         "elapsed": float(clock.iloc[-1]) if len(clock) else None}
        st.switch_page("pages/train.py")


def waiting(snap) -> None:
    """A queued run: where it stands, and Cancel (for whoever may control runs)."""
    spot = next((q for q in store.queue() if q["run_id"] == snap.run_id), None)
    if spot is None:
        return
    after = f"; it starts when {spot['waits_for']} finishes" if spot["waits_for"] else ""
    st.info(f"Waiting for a free training slot (this server trains {store.max_runs} at once): position "
            f"{spot['position']}{after}. It starts by itself.", icon=":material/hourglass_top:")
    if roles.can_control():
        st.button("Cancel", icon=":material/close:", key="btn_cancel", on_click=command, args=("cancel", snap.run_id, True))


def note_resume(run_id: str) -> None:
    """Resume's on_click for a stopped run: continuing it starts a training process first (seconds), so the click is
    only noted here and the whole-page run it triggers carries it out under a spinner (a callback cannot draw one)."""
    if roles.can_control():
        st.session_state["monitor_resume"], st.session_state["monitor_redraw"] = run_id, True


COMMAND_DONE = {"pause": "Pausing…", "stop": "Stopping: a final checkpoint is being written"}


def command(name: str, run_id: str, redraw: bool = False) -> None:
    """A control's on_click: it runs before the rerun its click starts, so the click is carried out even when that
    rerun redraws the whole page (a run's status changed while the live view redrew its buttons). `redraw`: the
    whole page is drawn again after it (a cancelled queued run leaves the live view)."""
    if not roles.can_control():
        return
    try:
        getattr(store, name)(run_id)
    except (KeyError, StudioError, ValueError) as e:
        st.session_state["monitor_command_error"] = plain(roles.private_text(e.args[0] if e.args else e, store.root))
    else:
        st.session_state["monitor_redraw"] = redraw
        st.session_state["monitor_command_done"] = COMMAND_DONE.get(name)  # shown by the rerun (a callback draws
        # nothing inside a fragment)


def controls(snap) -> None:
    if snap.status == QUEUED:
        return waiting(snap)
    if not roles.can_control():
        if snap.status in LIVE_STATUSES:
            st.caption(f":material/lock: {roles.REASON}.")
        return
    c1, c2, c3, _ = st.columns([2, 1, 1, 2])
    args = dict(on_click=command)
    if snap.status == "running":
        c1.button("Pause", icon=":material/pause:", key="btn_pause", args=("pause", run_id), **args)
    if snap.status == "paused":
        c1.button("Resume", icon=":material/play_arrow:", key="btn_unpause", args=("resume", run_id), **args)
    if snap.status in ("starting", "running", "paused"):
        c2.button("Stop", icon=":material/stop:", key="btn_stop", args=("stop", run_id), **args)
    if snap.status in ("interrupted", "stopped", "failed") and snap.checkpoints:
        c1.button("Resume", icon=":material/replay:", key="btn_resume", on_click=note_resume, args=(run_id,),
                  help=f"Continue from the last checkpoint (step {checkpoint_step(snap.checkpoints[-1]):,})")
    if problem := st.session_state.pop("monitor_command_error", None):
        st.error(problem)
    if done := st.session_state.pop("monitor_command_done", None):
        st.toast(done)


def statuses_changed() -> bool:
    """A run started, ended or changed state since the page was drawn: the Run selector's labels are stale."""
    listing = live.runs_after(store, drawn_at)
    if listing is None:
        return False
    now = {r["run_id"]: r["status"] for r in listing}
    return any(now.get(rid) != status for rid, status in statuses_drawn.items()) or bool(set(now) - set(statuses_drawn))


@st.fragment(run_every=refresh.live_interval() if any_live else None)
def live_view() -> None:
    refresh.still_watching()
    if st.session_state.pop("monitor_redraw", False) or any_live and statuses_changed():
        st.rerun()  # a run started or ended: redraw the whole page (selector labels, history, downloads)
    snap = live.frame(store.snapshot(run_id))  # one frame a second for every session (ui/live.py)
    colour, text = STATUS_BADGE.get(snap.status, ("red", "unreadable"))
    # Values from the run folder go through plain(): a hostile config.json or status.json must not fetch an image
    # or draw a link here.
    cfg = snap.config
    what = f"**{plain(cfg.arch)}** · {plain(cfg.loss)} on {plain(cfg.dataset)}" if cfg else "**?**"
    st.markdown(f":{colour}-badge[{text}] &nbsp; {what} · {plain(snap.device or '')}"
                + (f" · {plain(snap.precision)}" if snap.precision else ""))
    if snap.message:
        (st.error if snap.status in ("failed", "diverged", "unreadable") else st.info)(plain(roles.private_text(snap.message, store.root)))
    if snap.status == "unreadable":  # nothing of it can be trusted: no controls, curves or diagnosis
        return
    controls(snap)
    at = scrubber("mon", snap.step, "Move every view to a step: a marker on each curve, the nearest saved grid, the "
                                    "quality and diagnosis as they were then. Live follows the newest step.")
    view = as_of(snap, at) if at is not None else snap
    fork_here(snap, at)
    health(view)
    total = f" / {snap.total_steps}" if snap.total_steps else ""
    st.progress(snap.progress, text=f"step {snap.step}{total} · {snap.progress:.0%}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Step", f"{snap.step}{total}")
    rate = snap.images_per_s
    m2.metric("Images / s", f"{rate:,.0f}" if rate else "—", help="Training images per second over the last 10 "
              "logged windows (Compare and the presenter view show the same figure).")
    m3.metric("Elapsed", fmt_seconds(snap.elapsed))
    m4.metric("ETA", fmt_seconds(snap.eta_seconds) if snap.status in LIVE_STATUSES else "—")

    left, right = st.columns([3, 2])
    with left:
        smoothing = st.slider("Curve smoothing", 0.0, 0.99, key="mon_smoothing", step=0.01,
                              help="Exponential moving average, as in TensorBoard. 0 = raw values.")
        if smoothing != DEFAULT_SMOOTHING:
            st.query_params["smooth"] = f"{smoothing:g}"  # a reload keeps it, like ?run=
        elif "smooth" in st.query_params:
            del st.query_params["smooth"]
        found = live.reference(snap.config.preset if snap.config else "")
        st.toggle("Healthy reference", key="mon_reference", disabled=found is None,
                  help=f"A faint band: a known-good run of `{found[0]}` ({int(found[1]['step'].iloc[-1])} steps)."
                  if found else "No healthy reference for this run: 2-D runs and runs without a recorded preset have none "
                  "(benchmarks/record_reference.py records one).")
        if len(snap.metrics):
            loss, scores, grads, _ = (charts.with_marker(f, at) for f in figures_for(snap, smoothing))
            st.plotly_chart(loss, key="mon_loss", width="stretch")
            st.plotly_chart(scores, key="mon_scores", width="stretch")
            st.plotly_chart(grads, key="mon_grads", width="stretch")
        else:
            st.caption("The first metrics appear after `log_every` steps.")
    with right:
        grid = live.grid_png(store, run_id, view.latest_grid_step)
        if grid is not None:
            near = f" (nearest saved grid to step {at})" if at is not None and at != view.latest_grid_step else ""
            st.image(grid, width="stretch", output_format="PNG",
                     caption=present.grid_caption(snap, view.latest_grid_step, near))
        else:
            st.caption("No samples yet.")
    quality(snap, at)
    share(at)


def share(at: int | None) -> None:
    """Presenter view, and a link to this run at the scrubber's step (the same ?step= the address bar carries)."""
    links.show_step(at)
    with st.expander("Share and present", icon=":material/cast_for_education:"):
        st.page_link("pages/monitor.py", label="Presenter view (full screen, for a projector)",
                     icon=":material/slideshow:", query_params={"run": run_id, "present": "1"})
        shared = {"run": run_id, **({"step": at} if at is not None else {})}
        links.show_link("A link to this run" + (" at this step of its timeline" if at is not None else ""),
                        links.page_url("monitor", shared))


if st.session_state.pop("monitor_resume", None) == run_id and roles.can_control():
    st.session_state.pop("monitor_redraw", None)  # this whole-page run is that redraw
    with st.spinner(f"Starting a training process from the last checkpoint of {run_id}…"):
        command("resume", run_id)
    if "monitor_command_error" not in st.session_state:
        st.rerun()  # the run is live now: every view (selector, live refresh) follows it
live_view()

if snap.grid_steps:
    st.subheader("Downloads")
    steps = snap.grid_steps

    def gif_bytes() -> bytes:
        chosen = steps[:: max(1, len(steps) // MAX_GIF_FRAMES)]
        grids = [(s, g) for s, g in ((s, store.grid(run_id, s)) for s in chosen) if g is not None]
        return history_gif(grids, duration_ms=150, skip_untrained=snap.config is None or snap.config.task == "generate")

    # Downloads read through the store: regular files inside the run folder only, never a link put there.
    def latest_png() -> bytes:
        return store.grid_png(run_id, steps[-1])

    def checkpoint_bytes() -> bytes:
        return store.read_file(run_id, f"checkpoints/{store.checkpoints(run_id)[-1].name}")

    d1, d2, d3, d4, d5 = st.columns(5)
    d1.download_button("Latest grid (PNG)", latest_png, file_name=f"{run_id}_step{steps[-1]}.png", mime="image/png",
                       icon=":material/image:", on_click="ignore")
    d2.download_button("History (GIF)", gif_bytes, file_name=f"{run_id}.gif", mime="image/gif",
                       icon=":material/gif_box:", on_click="ignore")
    d3.download_button("Checkpoint (.safetensors)", checkpoint_bytes, file_name=f"{run_id}_{(snap.checkpoints or ['none'])[-1]}",
                       mime="application/octet-stream", icon=":material/save:", on_click="ignore",
                       disabled=not snap.checkpoints)
    d4.download_button("Metrics (CSV)", lambda: store.metrics_csv(run_id),
                       file_name=f"{run_id}_metrics.csv", mime="text/csv", icon=":material/table:", on_click="ignore")
    script, why_not = run_script(run_id, snap.config.to_json()) if snap.config else (None, "this run's config is unreadable")
    d5.download_button("Script (.py)", script or "", file_name=script_name(run_id), mime="text/x-python",
                       icon=":material/code:", on_click="ignore", disabled=script is None,
                       help=why_not or "This run as one plain PyTorch file: `python my_gan.py --data-root DIR --steps N`")

if snap.config is not None:  # an unreadable run has nothing to check
    copying(snap)

if not was_live and snap.status == "finished" and snap.checkpoints and roles.can_control():
    with st.expander("Train longer"):
        more = st.number_input("Extra steps", min_value=1, max_value=1_000_000, value=1000, step=100, key="mon_more")
        if st.button("Continue training", key="btn_more", icon=":material/fast_forward:"):
            try:
                store.continue_run(run_id, steps=max(snap.step, snap.config.steps) + int(more), max_seconds=0.0)
                st.rerun()
            except (KeyError, StudioError, ValueError) as e:
                st.error(plain(roles.private_text(e.args[0] if e.args else e, store.root)))

with st.expander("Run log and config"):
    st.code(roles.private_text("\n".join(snap.events), store.root) or "(no notes)", language=None)
    private = roles.can_control()  # server paths are the teacher's: a classroom viewer sees names only
    shown = snap.config.to_dict() if snap.config else {}
    if not private and "data_root" in shown:
        shown["data_root"] = "(a folder on the server)"
    st.json(shown, expanded=False)
    st.text(f"Folder: {snap.run_dir}" if private else f"Folder: {snap.run_id} (in the server's runs folder)")
    for line in (store.handle(run_id).where_logged(absolute=private) if snap.config else ()):  # TensorBoard / MLflow
        st.text(line)
    if snap.config and supports(snap.config.dataset) and private:  # where the server keeps files: not for viewers
        st.caption(cache_help(snap.config.dataset))
