"""Learn: five short lessons for a classroom, each with a one-click run that shows it and a question to discuss."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from gan_core.config import ConfigError
from gan_core.playground.session import link_params
from gan_core.presets import PRESETS, build_config
from ui import roles
from ui.state import start_and_watch

st.title("Learn: how GANs train, and how they fail")
st.caption("Each lesson has a one-click run: it starts in the background and opens Monitor, so the class watches the "
           "idea happen. The failure demos show their lesson within a minute on a laptop CPU and stop by themselves; "
           "Monitor's health panel then offers **Open the fix in Train**: press Start there and the class sees the fix "
           "draw digits (or cover the ring) within a minute or two, called *Healthy* only once the samples are measured "
           "as digits.")


def launch(preset: str) -> None:
    try:
        config = build_config(preset, name=f"learn-{preset}")
    except ConfigError as e:
        st.error(str(e))
        return
    start_and_watch(config)


def demo_buttons(*presets: tuple[str, str], key: str = "learn") -> None:
    cols = st.columns(len(presets))
    for col, (preset, label) in zip(cols, presets):
        with col:
            if st.button(label, key=f"{key}_{preset}", icon=":material/play_arrow:", width="stretch",
                         help=roles.reason() or PRESETS[preset]["description"], disabled=not roles.can_control()):
                launch(preset)
            st.caption(PRESETS[preset]["description"])


def look(text: str) -> None:
    st.markdown(f":material/visibility: **On Monitor, look at** {text}")


def question(text: str) -> None:
    st.info(f"**Discuss:** {text}", icon=":material/forum:")


def saturation_figure() -> go.Figure:
    """G's two possible losses against D(G(z)): the saturating one is flat exactly where G starts out."""
    p = np.linspace(0.001, 0.999, 400)
    fig = go.Figure()
    fig.add_scatter(x=p, y=np.log(1 - p), name="minimax: minimise log(1 − D(G(z)))",
                    line=dict(width=3, color="#1f77b4"))
    fig.add_scatter(x=p, y=-np.log(p), name="non-saturating: minimise −log D(G(z))",
                    line=dict(width=3, color="#E8590C"))
    fig.add_vrect(x0=0, x1=0.1, fillcolor="#ffe3e3", opacity=0.6, line_width=0,
                  annotation_text="early training: D spots every fake", annotation_position="top left")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="D(G(z)) — D's belief a fake is real",
                      yaxis_title="generator loss", legend=dict(orientation="h", y=-0.25))
    return fig


minimax, losses, dcgan, collapse, strong = st.tabs(
    ["1 · The minimax game", "2 · LSGAN and WGAN", "3 · DCGAN rules", "4 · Mode collapse", "5 · When D is too strong"])

with minimax:
    st.markdown("""
Two networks play a game. The **discriminator** D looks at an image and says how likely it is to be real.
The **generator** G turns random noise z into images and wants D to believe them. Goodfellow et al. (2014)
wrote the game as one value that D maximises and G minimises:""")
    st.latex(r"\min_G \max_D \; \mathbb{E}_{x}[\log D(x)] + \mathbb{E}_{z}[\log(1 - D(G(z)))]")
    st.markdown("""
At the start G's images are noise, so D rejects them easily: D(G(z)) ≈ 0. Look at the blue curve there: it is
almost **flat**, so G gets almost no gradient and learns nothing. The fix every tutorial uses is to flip G's
goal to *maximise log D(G(z))* — the **non-saturating** loss (orange), steep exactly where G starts.""")
    st.plotly_chart(saturation_figure(), key="learn_saturation", width="stretch")
    demo_buttons(("demo-minimax", "Run the saturating minimax loss"),
                 ("fast-mnist", "Run a working recipe (non-saturating loss)"), key="learn1")
    look("the **Gradient norms** chart: in the minimax run ‖∇G‖ falls to a few thousandths — about 0.2% of its "
         "peak — within ~100 steps while **D(fake)** drops to 0; the health panel says *Vanishing gradient*. The "
         "working recipe (the fast default: a small conv net with the non-saturating loss) keeps ‖∇G‖ alive and draws "
         "digits within the minute.")
    st.caption("Tutorial 002's exact MLP recipe is the preset `classic-mlp` on the Train page: faithful to the tutorial, "
               "but it needs many epochs and collapses early (1-3 classes after a minute), so it is not the one to "
               "show in class.")
    question("Both losses push G the same way. Why does one stop giving G any gradient exactly when G is worst?")

with losses:
    st.markdown("""
**LSGAN** (Mao et al. 2017) replaces D's log loss with a squared error: D regresses real images to 1 and fakes
to 0, and G pulls its fakes towards 1. A fake far from the boundary still gets a strong pull, so training is
steadier and the images sharper.""")
    st.latex(r"L_D = \tfrac12(D(x)-1)^2 + \tfrac12 D(G(z))^2 \qquad L_G = \tfrac12 (D(G(z))-1)^2")
    st.markdown("""
**WGAN** (Arjovsky et al. 2017) drops probabilities altogether: a *critic* gives real images high scores and fakes
low ones, and the gap estimates the Wasserstein distance — a loss that falls as the samples improve. The critic
must be 1-Lipschitz: WGAN clips its weights to ±c; **WGAN-GP** (Gulrajani et al. 2017) instead penalises the
critic's gradient norm for straying from 1, with weight λ = 10, and trains the critic 5 times per G step.""")
    st.latex(r"L_D = D(G(z)) - D(x) + \lambda\,(\lVert\nabla_{\hat x} D(\hat x)\rVert_2 - 1)^2 \qquad L_G = -D(G(z))")
    demo_buttons(("lsgan-mlp", "Run LSGAN"), ("wgan-gp-mlp", "Run WGAN-GP"))
    look("**D(real) and D(fake)**: both runs report raw scores, not probabilities. For WGAN-GP the gap between "
         "them estimates how far the fakes are from the data; it shrinks as the samples improve.")
    st.caption("How long: both MLP recipes need about 2,000 steps before the grid shows digits (a few minutes on a laptop "
               "CPU; LSGAN's healthy reference reaches a Fréchet distance of ~250 at step 2,000 and ~100 by 3,000). Until "
               "then the health panel says *Learning: no digits yet*, which is no alarm.")
    question("On Monitor, the WGAN-GP scores are labelled as raw critic scores, not probabilities. Why has the 0.5 line "
             "gone, and what does the gap between D(real) and D(fake) tell you as training goes on?")

with dcgan:
    st.markdown("""
Radford et al. (2015) found the rules that made convolutional GANs train reliably:
- no pooling: **strided convolutions** in D, **transposed convolutions** in G, so each learns its own resampling;
- **BatchNorm** in both nets (not on G's output or D's input);
- no fully connected hidden layers in deep nets;
- **ReLU** in G with **tanh** on the output (images scaled to [-1, 1]); **LeakyReLU 0.2** in D;
- **Adam** with lr 2·10⁻⁴ and β₁ = 0.5; weights initialised from N(0, 0.02).

The fast default preset is a small conv GAN too, but trades these recipes for speed: a narrow net and Adam at
lr 2·10⁻³ with β₁ = 0 learn the digits in fewer steps. It adds the digit label to both nets (a conditional GAN) and
averages G's weights over time (EMA) for cleaner samples — digits appear within a minute on a laptop.""")
    demo_buttons(("fast-mnist", "Run the fast DCGAN"), ("classic-dcgan", "Run tutorial 000's DCGAN"))
    look("the **fixed-noise grid** and the **Quality** panel: the fast DCGAN draws every digit (column k is digit k) "
         "within the minute.")
    st.caption("How long: the tutorial's DCGAN is heavier per step (about 4-5 steps a second on a laptop CPU, ~600 "
               "images/s), so its 3,000 steps take 12-15 minutes and recognisable digits come only after several of "
               "them. Start it before the lesson (or on a GPU); until its samples are digits the health panel says "
               "*Learning: no digits yet*, not an alarm.")
    question("Why might pooling layers, which throw away where a feature was, hurt a network that has to draw images?")

with collapse:
    st.markdown("""
**Mode collapse**: G finds a few outputs that fool D and makes only those. On 8 Gaussians arranged in a ring,
a collapsed G puts all its points on one or two of the 8 blobs; D learns to reject that blob, G jumps to another,
and the chase goes round the ring without ever covering it. On digits it looks like a grid of mostly 1s.

This demo trains a generator against a tiny D (2 layers of 16 units) that can only draw one bump on the plane.
The fixed-noise scatter on Monitor shows the real ring in light blue and G's points in orange on top. The 2-D
playground shows the same game step by step, with D's surface and G's gradients.""")
    demo_buttons(("demo-mode-collapse", "Run: mode collapse on ring-8"), ("2d-default", "Run: the default that covers all 8"))
    look("the **scatter**: within ~200 steps the orange points shrink into one small cloud — it sits between the blobs "
         "or on one of them, and moves as D chases it — while the blue ring stays uncovered; **Mode coverage** shows "
         "0–1 of 8 modes and a spread near 0; the health panel says *Mode collapse*. The default spreads over the "
         "ring and reaches more modes as it trains.")
    st.page_link("pages/playground.py", label="Open this demo in the 2-D playground (the same GAN, step by step)",
                 icon=":material/scatter_plot:", query_params=link_params("demo-mode-collapse"))
    question("Why doesn't D simply learn to accept the missing modes? What does D get rewarded for?")

with strong:
    st.markdown("""
If D learns much faster than G, it becomes certain: D(real) → 1 and D(fake) → 0. The gradient it passes back to G
then carries little information, G's loss climbs, and the samples stop improving. A learning rate that is too high
fails differently: every update overshoots, the losses jump around or blow up, and the samples turn to noise.
Monitor's health panel names both in plain words and suggests a fix.""")
    demo_buttons(("demo-d-too-strong", "Run: D too strong"), ("demo-lr-too-high", "Run: learning rate too high"))
    look("**D(real) and D(fake)** for *D too strong*: D(real) pinned at 1 and D(fake) near 0 within ~20 steps, G's "
         "loss near 10, samples still noise — the health panel says *D is winning*. For *learning rate too high* look "
         "at **D's loss**: it jumps into the tens and hundreds (a balanced game sits near 1.4) — *Diverged*. Each "
         "fix (the health panel's button) balances D and G, or takes ten times smaller steps, on the fast default's "
         "networks, and draws digits within the minute.")
    question("Look at D(real) and D(fake). A perfect discriminator sounds like a good thing: why is it bad for G? "
             "What would you change first — D's learning rate, D's size, or the number of D steps?")
