"""Restore: repair damaged images (inpainting) or sharpen low-res ones (super-resolution) with a trained run,
side by side with the naive repair, the search's progress and the numbers."""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from gan_core.data import dataset_info
from gan_core.errors import StudioError
from gan_core.restore import restorer as rs
from gan_core.restore.damage import MASK_HELP, MASKS, make_mask
from gan_core.restore.demo import MAX_PICTURE_MB, image_from_png, run_demo, test_images
from gan_core.tasks import FACTORS
from ui.pixels import pixel_canvas
from gan_core.restore.prior import SEARCHES
from ui import roles
from ui.state import get_store
from ui.text import plain

st.title("Restore")
st.caption("What a GAN is good for beyond drawing: filling holes in damaged images and sharpening blurry ones. A "
           "restorer run (presets inpaint-… and superres-…) repairs in one pass; a generator run repairs by searching "
           "its noise (and class) for the sample that agrees with what is known (a GAN prior: Yeh et al. 2017, PULSE "
           "2020). Known pixels are kept exactly.")
store = get_store()


def image_run(r) -> bool:
    try:
        return dataset_info(r["dataset"]).kind == "image"
    except Exception:
        return False


runs = [r for r in store.runs() if image_run(r) and store.checkpoints(r["run_id"])]
if not runs:
    st.info("No image run has a checkpoint yet. Train one (the fast default takes a minute), then come back.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/rocket_launch:")
    st.stop()


ids = [r["run_id"] for r in runs]
default = st.session_state.get("monitor_run")
c1, c2 = st.columns([3, 1])
run_id = c1.selectbox("Run", ids, index=ids.index(default) if default in ids else 0, key="rst_run")
ckpt = store.checkpoints(run_id)[-1]
try:
    with st.spinner("Loading the run…"):
        restorer = store.handle(run_id).restorer(ckpt.name)  # loaded once per checkpoint file, for every session
except (StudioError, OSError) as e:
    st.error(plain(roles.private_text(f"Cannot restore with {run_id}: {e}", store.root)))
    st.stop()
c2.metric("Method", "GAN prior" if restorer.method == "prior" else "trained restorer", help=plain(f"{ckpt.name}, step {restorer.step}"))

TASK_NAMES = {"inpaint": "Inpainting (fill holes)", "superres": "Super-resolution"}
if restorer.method == "trained":  # a restorer does the one task it was trained for
    task = restorer.cfg.task
    st.caption(f"Task: **{TASK_NAMES[task]}**: this restorer was trained for it (a generator run does both).")
else:
    task = st.segmented_control("Task", list(TASK_NAMES), default="inpaint", key="rst_task",
                                format_func=TASK_NAMES.get) or "inpaint"

# ---------------------------------------------------------------------- the images
st.subheader("Images")
sources = ["test images", "a picture", "drawing"] if roles.can_control() else ["test images", "drawing"]  # uploads: teacher
source = st.segmented_control("Images from", sources, default="test images",
                              key="rst_source") or "test images"
labels = None
if source == "test images":
    a, b = st.columns(2)
    count = a.slider("How many", 1, 32, 8, key="rst_count")
    seed = b.number_input("Pick (seed)", 0, 10**6, 0, key="rst_seed", help="Another seed, other images.")
    truth, labels = test_images(restorer, int(count), int(seed))
elif source == "a picture" and roles.can_control():
    up = st.file_uploader(f"A PNG or JPEG up to {MAX_PICTURE_MB} MB (centre-cropped and shrunk to the run's size)",
                          type=["png", "jpg", "jpeg"], key="rst_upload", max_upload_size=MAX_PICTURE_MB)
    if up is None:
        st.stop()
    try:
        truth = image_from_png(up.getvalue(), restorer)
    except rs.RestoreError as e:
        st.error(plain(f"Cannot use {up.name}: {e}"))
        st.stop()
else:
    key = f"rst_drawing_{restorer.size}"
    if key not in st.session_state or st.button("Start from a test image", key="rst_from_test"):
        st.session_state[key] = test_images(restorer, 1, np.random.randint(10**6))[0][0].mean(0)
    if st.button("Clear", key="rst_clear"):
        st.session_state[key] = np.full((restorer.size, restorer.size), -1.0, np.float32)
    ink = st.segmented_control("Brush", ["ink", "erase"], default="ink", key="rst_ink") or "ink"
    st.caption("Drag a lasso (or a box: pick it in the chart's toolbar) over the pixels to paint.")
    picked = pixel_canvas(st.session_state[key], key="rst_draw_canvas")
    st.session_state[key][picked] = 1.0 if ink == "ink" else -1.0
    truth = np.repeat(st.session_state[key][None, None], restorer.channels, 1).astype(np.float32)

# ---------------------------------------------------------------------- the damage
st.subheader("Damage")
mask, factor = None, 4
if task == "inpaint":
    kinds = list(MASKS) + ["brush"]
    kind = st.segmented_control("Mask", kinds, default="centre", key="rst_mask",
                                format_func=lambda k: k if k == "brush" else f"{k}") or "centre"
    st.caption(MASK_HELP.get(kind, "paint the holes yourself (lasso or box), on every image alike"))
    if kind == "brush":
        hkey = f"rst_holes_{restorer.size}"
        if hkey not in st.session_state or st.button("Clear the holes", key="rst_holes_clear"):
            st.session_state[hkey] = np.zeros((restorer.size, restorer.size), bool)
        st.session_state[hkey] |= pixel_canvas(truth[0].mean(0), key="rst_hole_canvas", holes=st.session_state[hkey])
        mask = np.broadcast_to(~st.session_state[hkey], (len(truth), 1, restorer.size, restorer.size)).astype(np.float32)
    else:
        mask = make_mask(kind, len(truth), restorer.size, seed=1).numpy()
elif restorer.method == "trained":
    factor = restorer.cfg.factor
    st.caption(f"×{factor}: {restorer.size // factor}×{restorer.size // factor} → {restorer.size}×{restorer.size} "
               f"({restorer.cfg.downsample} down-sampling, as in training)")
else:
    factor = st.segmented_control("Down-sampling", list(FACTORS), default=4, key="rst_factor",
                                  format_func=lambda f: f"×{f}: {restorer.size // f}×{restorer.size // f} → "
                                                        f"{restorer.size}×{restorer.size}") or 4

# ---------------------------------------------------------------------- restore and show
if st.button("Restore", type="primary", icon=":material/healing:", key="rst_go"):
    bar = st.progress(0.0, text="Searching…")
    settings = rs.SearchSettings(frame_images=min(len(truth), 16))

    def progress(it: int, total: int, loss: float) -> None:
        bar.progress(it / total, text=f"iteration {it}/{total} · loss {loss:.4f}")

    def queued(ahead: int) -> None:
        bar.progress(0.0, text=f"Queued behind {ahead} other search{'es' if ahead > 1 else ''}: this server runs one "
                               f"at a time, so each finishes sooner and the teacher's run keeps its speed")

    try:
        with st.spinner("Restoring…"), SEARCHES.turn(on_wait=queued):
            st.session_state["rst_demo"] = run_demo(restorer, task, truth, labels, mask, factor, settings, progress)
    except rs.RestoreError as e:
        st.error(plain(roles.private_text(e, store.root)))
    bar.empty()

demo = st.session_state.get("rst_demo")
if demo is not None:
    st.subheader("Result")
    names = " | ".join(demo.rows)
    st.image(demo.grid(), caption=f"rows, top to bottom: {names.replace(' | ', ' · ')} ({demo.seconds:.1f} s)",
             width="stretch" if len(demo.rows["truth"]) > 4 else 360)
    st.dataframe(pd.DataFrame(demo.table), hide_index=True)
    st.caption("PSNR against the truth (on the holes for inpainting; higher is better). Digits read: what the quality "
               "evaluator (a small classifier) sees in each restored image.")
    if demo.losses:
        st.subheader("The search")
        l, r = st.columns([1, 1])
        l.line_chart(pd.DataFrame({"iteration": range(1, len(demo.losses) + 1), "loss": demo.losses}),
                     x="iteration", y="loss", height=260)
        frames = demo.frame_images()
        if frames:
            i = r.select_slider("Frame", options=list(range(len(frames))), value=len(frames) - 1, key="rst_frame",
                                format_func=lambda k: f"iteration {frames[k][0]}")
            r.image(frames[i][1], caption=f"G's best sample at iteration {frames[i][0]}", width="stretch")
            r.download_button("Search as GIF", demo.gif, file_name=f"{Path(run_id).name}_{demo.task}.gif",
                              mime="image/gif", icon=":material/gif_box:", on_click="ignore", key="rst_gif")
