"""Latent explorer: drag the first k noise dimensions of a trained G, and walk between two seeds."""
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from gan_core.engine.checkpoint import CheckpointError
from gan_core.engine.pictures import generate, noise, to_gif, to_grid_image
from gan_core.errors import StudioError
from gan_core.insight.latent import (along, class_walk, direction_strip, points_with_data, principal_directions,
                                     seed_walk, slider_noise)
from gan_core.runs.files import slug
from gan_core.runs.handle import load_uploaded_generator
from ui import charts, roles
from ui.state import get_store
from ui.text import plain

MAX_UPLOAD_BYTES = 200 * 2**20  # as server.maxUploadSize in .streamlit/config.toml

st.title("Latent explorer")
st.caption("A generator is a function from noise z to images. Move along z and watch what changes.")
store = get_store()


def generates(run_id: str) -> bool:
    """A generation run (noise in, image out); a restorer maps images to images and has no latent space."""
    try:
        return store.config(run_id).task == "generate"
    except StudioError:  # unreadable: not listed
        return False


with_checkpoints = [r for r in store.runs() if store.checkpoints(r["run_id"])]
runs = [r for r in with_checkpoints if generates(r["run_id"])]
restorers = len(with_checkpoints) - len(runs)


def uploaded_generator(file_id: str, name: str, data: bytes):
    """A checkpoint someone uploaded, read through the same safetensors-only checks as every other load, and kept in
    this session only: it is gone when the session ends or another file replaces it (a process-wide cache held the
    last two uploads' generators after their sessions had closed)."""
    held = st.session_state.get("lat_uploaded")
    if held is None or held[0] != file_id:
        st.session_state.pop("lat_uploaded", None)  # the previous upload's generator is released before loading
        with st.spinner("Checking and loading the checkpoint…"):
            st.session_state["lat_uploaded"] = (file_id, load_uploaded_generator(data, name))
    return st.session_state["lat_uploaded"][1]


sources = ["a run", "a checkpoint file"] if roles.can_control() else ["a run"]  # viewers upload nothing
source = st.segmented_control("Generator from", sources, default="a run" if runs or len(sources) == 1 else
                              "a checkpoint file", key="lat_source") or "a run"
if source == "a checkpoint file":
    up = st.file_uploader("A GAN Studio checkpoint (.safetensors)", type=["safetensors", "pth", "pt", "ckpt"],
                          key="lat_upload", help="Only safetensors files are loaded: nothing is ever unpickled. "
                                                 f"Limit {MAX_UPLOAD_BYTES // 2**20} MB.")
    if up is None:  # removed (or none yet): nothing of an earlier upload stays
        st.session_state.pop("lat_uploaded", None)
        st.stop()
    run_id = slug(Path(up.name).stem, 60)  # only names the downloads
    try:
        if up.size > MAX_UPLOAD_BYTES:
            raise CheckpointError(f"{up.name}: {up.size / 2**20:.0f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB "
                                  f"upload limit")
        G, cfg, step = uploaded_generator(up.file_id, up.name, up.getvalue())
    except (CheckpointError, OSError) as e:
        st.session_state.pop("lat_uploaded", None)
        st.error(plain(f"Cannot load this file. {e}"), icon=":material/block:")
        st.stop()
else:
    st.session_state.pop("lat_uploaded", None)
    if restorers:
        st.caption(f"{restorers} restorer run{'s are' if restorers > 1 else ' is'} not listed: a restorer maps a "
                   f"damaged image to a repaired one, so it has no noise z to explore (the Restore page uses it).")
    if not runs:
        st.info("No generation run has a checkpoint yet. Checkpoints are written every `checkpoint_every` steps and at "
                "the end of a run. You can also open a checkpoint file.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/rocket_launch:")
        st.stop()
    ids = [r["run_id"] for r in runs]
    default = st.session_state.get("monitor_run")
    c1, c2 = st.columns([2, 1])
    run_id = c1.selectbox("Run", ids, index=ids.index(default) if default in ids else 0, key="lat_run",
                          format_func=lambda rid: f"{next(r['status'] for r in runs if r['run_id'] == rid):>10} · {rid}")
    ckpts = store.checkpoints(run_id)
    names = [p.name for p in ckpts]
    ckpt = c2.selectbox("Checkpoint", names, index=len(names) - 1, key="lat_ckpt",
                        help="Every checkpoint of the run; the newest is last. A running run gains new ones as it trains.")
    try:
        with st.spinner("Loading the generator…"):
            G, cfg, step = store.handle(run_id).generator(ckpt)  # loaded once per checkpoint file, for every session
    except (CheckpointError, OSError) as e:
        st.error(plain(roles.private_text(f"Cannot load {ckpt}: {str(e).splitlines()[0][:300]}", store.root)))
        st.stop()

label = None
if G.num_classes:
    label = st.segmented_control("Digit / class", list(range(G.num_classes)), default=0, key="lat_label",
                                 help="This run is conditional: choose which class G draws.")
    label = 0 if label is None else label


def draw(z, nrow=None) -> np.ndarray:
    labels = None if label is None else np.full(len(z), label)
    return to_grid_image(generate(G, z, labels), nrow)


if cfg.is_2d:  # a point cloud: z-sliders and walks do not apply; show G's samples over the data they imitate
    st.subheader("Samples over the data")
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, 1, key="lat_seed", help="Which 500 noise vectors G maps.")
    fake, real = points_with_data(G, cfg, 500, int(seed))
    fig = go.Figure(dict(data=[
        dict(type="scatter", x=real[:, 0], y=real[:, 1], mode="markers", name=f"real data ({cfg.dataset})",
             marker=dict(size=5, color=charts.POINT_COLOURS["real"], opacity=0.6)),
        dict(type="scatter", x=fake[:, 0], y=fake[:, 1], mode="markers", name=f"G's samples (step {step})",
             marker=dict(size=5, color=charts.POINT_COLOURS["fake"], opacity=0.8))],
        layout=dict(height=480, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(title=dict(text="x"), zeroline=True),
                    yaxis=dict(title=dict(text="y"), scaleanchor="x", zeroline=True),
                    legend=dict(orientation="h", y=-0.12, x=0, yanchor="top"))))
    st.plotly_chart(fig, key="lat_points", width="stretch")
    st.caption("500 samples of this checkpoint (orange) over 500 points of the real data (blue). A point-set GAN has "
               "a 2-D z, so there are no image sliders here: the 2-D playground shows how G bends the plane.")
    st.info("Meaningful directions and the class walk apply to image runs; a 2-D run's noise is only 2 numbers.")
    st.stop()

st.subheader("Sliders")
s1, s2 = st.columns([1, 3])
seed = s1.number_input("Seed", 0, 2**31 - 1, 0, 1, key="lat_seed", help="Each seed is a different starting point z.")
k = s1.slider("Sliders shown (first k dims)", 1, min(cfg.z_dim, 16), min(cfg.z_dim, 6), key="lat_k")
base = noise(cfg, 1, int(seed))[0].tolist()
values = []
reset = s1.button("Reset sliders to the seed", key="lat_reset")
lo, hi = (-1.0, 1.0) if cfg.noise == "uniform" else (-3.0, 3.0)
with s1:
    for i in range(k):
        key = f"lat_z{i}_{seed}"
        if reset or key not in st.session_state:
            st.session_state[key] = float(np.clip(base[i], lo, hi))
        values.append(st.slider(f"z[{i}]", lo, hi, step=0.05, key=key))
z = slider_noise(cfg, int(seed), values)
with s2:
    st.image(draw(z), width=280, caption=f"step {step} · seed {seed}")

if not cfg.is_2d:
    st.subheader("Interpolation")
    a, b, c, d = st.columns(4)
    seed_a = a.number_input("From seed", 0, 2**31 - 1, 0, key="lat_a")
    seed_b = b.number_input("To seed", 0, 2**31 - 1, 1, key="lat_b")
    method = c.segmented_control("Path", ["slerp", "lerp"], default="slerp", key="lat_method",
                                 help="slerp follows the sphere where Gaussian z lives; lerp goes straight through the "
                                      "low-norm middle, which G rarely saw during training.") or "slerp"
    frames = d.slider("Frames", 3, 32, 10, key="lat_frames")
    t = st.slider("t", 0.0, 1.0, 0.5, 0.01, key="lat_t")
    path_z = seed_walk(cfg, int(seed_a), int(seed_b), frames, method)
    one = seed_walk(cfg, int(seed_a), int(seed_b), 101, method)[int(round(t * 100))][None]
    i1, i2 = st.columns([1, 4])
    i1.image(draw(one), width=140, caption=f"t = {t:.2f}")
    i2.image(draw(path_z, nrow=frames), width="stretch", caption=f"{frames} frames from seed {seed_a} to seed {seed_b}")

    def walk_gif() -> bytes:
        labels = None if label is None else np.full(len(path_z), label)
        xs = generate(G, path_z, labels)
        there_and_back = list(xs) + list(xs[::-1][1:-1])
        return to_gif([to_grid_image(x[None], 1) for x in there_and_back], duration_ms=90, scale=4)

    st.download_button("Walk as GIF", walk_gif, file_name=f"{run_id}_walk_{seed_a}_{seed_b}.gif", mime="image/gif",
                       icon=":material/gif_box:", on_click="ignore")


# ---------------------------------------------------------------------- meaningful directions (issue 18)
DIRECTIONS = 5


@st.cache_resource(max_entries=6, show_spinner="Finding the main directions of G's features…")
def directions_for(key: tuple, _G, _cfg):
    """GANSpace directions of one loaded G (key: run, step and that G object), computed once per server."""
    return principal_directions(_G, _cfg, k=DIRECTIONS)


st.subheader("Meaningful directions")
dirs = directions_for((run_id, step, id(G)), G, cfg)
st.caption("GANSpace (Härkönen et al. 2020): the principal components of G's first hidden layer, carried back to "
           "z. Unlike single z dimensions, each changes something visible; its strip previews −2.5σ … +2.5σ from "
           "the z of the sliders above.")
left, right = st.columns([3, 1])
amounts = []
with left:
    for i in range(len(dirs.explained)):
        c1, c2 = st.columns([1, 2])
        amounts.append(c1.slider(f"Direction {i + 1} · {dirs.explained[i]:.0%} of the variance", -3.0, 3.0, 0.0, 0.1,
                                 key=f"lat_dir{i}"))
        c2.image(direction_strip(G, z, dirs, i, label), width="stretch")
right.image(draw(along(z, dirs, amounts)), width="stretch", caption="z moved along the directions")
if G.num_classes:
    st.markdown("**Class vector walk** — the same z, its class vector slid from one class to another")
    a, b, f = st.columns(3)
    start = a.selectbox("From class", list(range(G.num_classes)), index=min(3, G.num_classes - 1), key="lat_walk_from")
    end = b.selectbox("To class", list(range(G.num_classes)), index=min(8, G.num_classes - 1), key="lat_walk_to")
    frames = f.slider("Frames ", 3, 16, 8, key="lat_walk_frames")
    st.image(class_walk(G, z, start, end, frames), width="stretch", caption=f"class {start} → class {end}")
else:
    st.caption("The class vector walk needs a conditional run (one trained with `conditional`).")
