"""Named starting points for a run (PRESETS) and build_config, which turns a preset plus overrides into a
RunConfig."""
from __future__ import annotations

from .config import ConfigError, RunConfig
from .data import DATASETS, dataset_info

# ---------------------------------------------------------------------- presets
# Each preset is a plain dict of overrides on the RunConfig defaults. `description` and `recipe`
# are shown by the CLI (`list --presets`) and the dashboard's preset picker.
# The failure demos start from tutorial 002's MLP GAN so the only difference is the one thing each demo shows. They are
# sized for a class: the phenomenon shows within ~100-300 steps (a few seconds on a quiet laptop, well inside a minute
# on a busy one), they log every 5 steps so Monitor's diagnosis has its evidence early, and none runs past 60 s. One
# CPU thread: on a shared or busy machine two threads of these small ops stall (a 60-s CLI run measured 11 steps on 2
# threads under load 18, against ~15 steps/s on one). Quality evaluation is on (every 50 steps): "Healthy" needs a
# look at the samples (health.py), and it costs a niced worker a few hundredths of a second per measurement.
# Each demo declares its one-click fix (`fix`: the preset, the settings and why), the one Learn's lesson was tested
# with (benchmarks/verdicts.py): tutorial 002's MLP needs many minutes to draw digits even with nothing broken, so the
# image demos' fixes apply the lesson's change to the fast default's small conv nets, which draw digits within a minute.
_DEMO_MLP = dict(dataset="mnist-embedded", arch="mlp", g_hidden=[256, 256], d_hidden=[256, 256], leaky_slope=0.2,
                 z_dim=100, noise="gaussian", optimizer="adam", lr_d=3e-4, lr_g=3e-4, beta1=0.9, beta2=0.999,
                 batch_size=64, init="default", eval_every=50, log_every=5, sample_every=50, checkpoint_every=500,
                 steps=1000, max_seconds=60, threads=1)

_IMAGE_FIX_WHY = ("The fix run applies this to the fast default's small conv nets (fast-mnist), which draw digits "
                  "within a minute on a laptop (it runs up to 2 minutes, for a busy machine); tutorial 002's MLP needs "
                  "many minutes even with nothing broken.")

_PLAYGROUND = dict(dataset="ring-8", arch="mlp2d", g_hidden=[64, 64, 64], d_hidden=[64, 64, 64], leaky_slope=0.2,
                   z_dim=2, noise="gaussian", loss="bce", optimizer="adam", lr_d=1e-3, lr_g=1e-3, beta1=0.5,
                   beta2=0.999, batch_size=128, r1_gamma=0.1, steps=3000, grid_size=400, log_every=20,
                   sample_every=100, checkpoint_every=1000, init="default")

PRESETS: dict[str, dict] = {
    "fast-mnist": {
        "description": "Fast default: recognisable digits of all ten classes within a minute on a laptop CPU. A narrow "
                       "conditional dcgan28 (width 16), BCE, Adam 2e-3 β=(0, 0.99) and EMA 0.99: large steps that learn "
                       "the labels in about 600 iterations, then both rates decayed linearly to 0 over the second half "
                       "of the budget (its minute, or its steps) so the run ends at its best, but never before "
                       "iteration 600: a shorter run keeps full rates until it has learned the labels.",
        "config": dict(dataset="mnist-embedded", arch="dcgan28", conditional=True, z_dim=64, g_features=16, d_features=16,
                       loss="bce", lr_d=2e-3, lr_g=2e-3, beta1=0.0, beta2=0.99, batch_size=64, steps=0, max_seconds=60,
                       lr_decay=0.5, lr_decay_after=600, ema=0.99, grid_size=100, sample_every=100, log_every=10, checkpoint_every=500),
    },
    "classic-mlp": {
        "description": "Tutorial 002 exactly: MLP G 100-256-256-784 (ReLU/Tanh), D 784-256-256-1 (LeakyReLU 0.2), "
                       "BCE, Adam lr 3e-4 β=(0.9, 0.999), batch 128, Gaussian z of 100. Faithful, not quick: it needs "
                       "many epochs, and collapses early (1-3 classes after a minute).",
        "config": dict(dataset="mnist-embedded", arch="mlp", g_hidden=[256, 256], d_hidden=[256, 256], leaky_slope=0.2,
                       z_dim=100, noise="gaussian", loss="bce", optimizer="adam", lr_d=3e-4, lr_g=3e-4, beta1=0.9,
                       beta2=0.999, batch_size=128, init="default", steps=5000),
    },
    "classic-dcgan": {
        "description": "Tutorial 000 exactly: dcgan32 (100→256→128→64→1, BatchNorm, LeakyReLU 0.2), BCE, Adam 2e-4 β=(0.5, 0.999), "
                       "batch 128, z 100, G updated every 2nd iteration.",
        "config": dict(dataset="mnist-embedded", arch="dcgan32", g_features=64, d_features=64, z_dim=100, noise="gaussian",
                       loss="bce", lr_d=2e-4, lr_g=2e-4, beta1=0.5, beta2=0.999, batch_size=128, g_every=2,
                       init="default", steps=3000),
    },
    "mlp-1024": {
        "description": "Tutorial 001's vanilla GAN: G 96-1024-1024-784, D 784-256-256-1 (LeakyReLU 0.01), uniform z, Xavier init, "
                       "Adam 1e-3 β=(0.5, 0.999), batch 128.",
        "config": dict(dataset="mnist-embedded", arch="mlp", g_hidden=[1024, 1024], d_hidden=[256, 256], leaky_slope=0.01,
                       z_dim=96, noise="uniform", init="xavier", loss="bce", lr_d=1e-3, lr_g=1e-3, beta1=0.5, batch_size=128,
                       steps=4000),
    },
    "lsgan-mlp": {
        "description": "Tutorial 001's Least-Squares GAN: the same MLPs with the LSGAN loss (0.5·(D(x)-1)² + 0.5·D(G(z))²).",
        "config": dict(dataset="mnist-embedded", arch="mlp", g_hidden=[1024, 1024], d_hidden=[256, 256], leaky_slope=0.01,
                       z_dim=96, noise="uniform", init="xavier", loss="lsgan", lr_d=1e-3, lr_g=1e-3, beta1=0.5,
                       batch_size=128, steps=4000),
    },
    "infogan-dcgan28": {
        "description": "Tutorial 001's DCGAN: InfoGAN generator (FC 1024 → FC 7·7·128 → two transposed convs), "
                       "conv/max-pool D, uniform z of 96, Xavier init, Adam 1e-3 β=(0.5, 0.999), batch 128.",
        "config": dict(dataset="mnist-embedded", arch="dcgan28", g_features=64, d_features=64, z_dim=96, noise="uniform",
                       init="xavier", loss="bce", lr_d=1e-3, lr_g=1e-3, beta1=0.5, batch_size=128, steps=3000),
    },
    "upconv-keras": {
        "description": "Tutorial 003: dense → 7×7×128, nearest upsampling + 3×3 convs; D with dropout 0.25 and BN momentum 0.8 "
                       "(Keras), Adam 2e-4 β=(0.5, 0.999), batch 32.",
        "config": dict(dataset="mnist-embedded", arch="upconv", z_dim=100, loss="bce", lr_d=2e-4, lr_g=2e-4, beta1=0.5,
                       batch_size=32, init="default", steps=3000),
    },
    "dcgan64": {
        "description": "Tutorial 004: DCGAN at 64×64 (features 64, N(0, 0.02) init), Adam 2e-4 β=(0.5, 0.999), batch 64. "
                       "Heavy on a CPU: a GPU preset.",
        "config": dict(dataset="mnist-embedded", arch="dcgan64", g_features=64, d_features=64, z_dim=100, init="dcgan",
                       loss="bce", lr_d=2e-4, lr_g=2e-4, beta1=0.5, batch_size=64, steps=2000),
    },
    "dcgan64-celeba": {
        "description": "Tutorial 004's recipe on faces (its closing exercise): DCGAN at 64×64 on CelebA's aligned faces in "
                       "colour, features 64, N(0, 0.02) init, BCE, Adam 2e-4 β=(0.5, 0.999), batch 64, about 4 epochs. "
                       "A GPU preset; needs CelebA in data_root/celeba.",
        "config": dict(dataset="celeba", channels=3, arch="dcgan64", g_features=64, d_features=64, z_dim=100,
                       noise="gaussian", init="dcgan", loss="bce", lr_d=2e-4, lr_g=2e-4, beta1=0.5, beta2=0.999,
                       batch_size=64, steps=10000, sample_every=500, checkpoint_every=2000),
    },
    "wgan-gp-dcgan": {
        "description": "WGAN-GP (Gulrajani 2017) on dcgan32: layer-norm critic, λ = 10, 5 critic steps, Adam 1e-4 β=(0.0, 0.9).",
        "config": dict(dataset="mnist-embedded", arch="dcgan32", g_features=32, d_features=32, d_norm="layer",
                       loss="wgan-gp", gp_lambda=10.0, n_critic=5, lr_d=1e-4, lr_g=1e-4, beta1=0.0, beta2=0.9,
                       batch_size=64, steps=2000),
    },
    "cgan-mnist": {
        "description": "Conditional GAN (Mirza & Osindero 2014): the MLP of tutorial 002 with the digit label fed to G and D; "
                       "pick the digit you want.",
        "config": dict(dataset="mnist-embedded", arch="mlp", conditional=True, g_hidden=[256, 512], d_hidden=[512, 256],
                       leaky_slope=0.2, z_dim=100, loss="bce", lr_d=2e-4, lr_g=2e-4, beta1=0.5, batch_size=64,
                       grid_size=100, steps=5000),
    },
    "2d-default": {
        "description": "2-D default: 3×64 MLPs, Adam 2e-3 β=(0, 0.99) and a light R1 penalty (γ = 0.1) that cover "
                       "every mode of ring-8 and grid-25 within 30 s of a laptop CPU (6,000 steps); rates decayed to 0 "
                       "over the second half pull the samples onto the modes.",
        # benchmarks/grid25.py measured these against the 3×128 nets with Adam 1e-3 β=(0.5, 0.999) and no R1 at the same
        # CPU time: R1 keeps every mode of grid-25, the higher rate and β1 = 0 put more samples on them, and narrower
        # nets buy the steps R1 costs (docs/benchmarks.md).
        "config": dict(dataset="ring-8", arch="mlp2d", g_hidden=[64, 64, 64], d_hidden=[64, 64, 64], leaky_slope=0.2,
                       z_dim=2, noise="gaussian", loss="bce", lr_d=2e-3, lr_g=2e-3, beta1=0.0, beta2=0.99,
                       batch_size=256, r1_gamma=0.1, steps=6000, lr_decay=0.5, grid_size=400, log_every=20,
                       sample_every=100, checkpoint_every=1000, init="default"),
    },
    "wgan-gp-mlp": {
        "description": "WGAN-GP on tutorial 002's MLPs: a critic (no sigmoid) with gradient penalty λ = 10, 5 critic steps "
                       "per G step, Adam 1e-4 β=(0.5, 0.9). Light enough for a CPU.",
        "config": dict(dataset="mnist-embedded", arch="mlp", g_hidden=[256, 256], d_hidden=[256, 256], leaky_slope=0.2,
                       z_dim=100, noise="gaussian", loss="wgan-gp", gp_lambda=10.0, n_critic=5, lr_d=1e-4, lr_g=1e-4,
                       beta1=0.5, beta2=0.9, batch_size=64, init="default", steps=3000),
    },
    # ---- failure demos for the Learn page: each shows one way a GAN goes wrong, within a minute on a CPU
    "demo-minimax": {
        "description": "Failure demo: tutorial 002's MLP GAN with the saturating minimax loss log(1 − D(G(z))). D wins within "
                       "~50 steps, D(fake) → 0, G's gradient vanishes (‖∇G‖ falls to ~0.2% of its peak) and G stops "
                       "learning. Monitor: the gradient-norm chart and the health panel (vanishing gradient).",
        "config": dict(_DEMO_MLP, loss="minimax"),
        "fix": {"preset": "fast-mnist", "settings": {"loss": "bce", "max_seconds": 120.0}, "why": _IMAGE_FIX_WHY},
    },
    "demo-d-too-strong": {
        "description": "Failure demo: D trained 3× per G step at 40× G's learning rate. Within ~20 steps D(real) → 1, "
                       "D(fake) → 0.0003, G's loss sits near 10 and the samples stay noise. Monitor: D(real)/D(fake) "
                       "and the health panel (D is winning).",
        "config": dict(_DEMO_MLP, n_critic=3, lr_d=2e-3, lr_g=5e-5),
        "fix": {"preset": "fast-mnist", "settings": {"n_critic": 1, "lr_d": 2e-3, "lr_g": 2e-3, "max_seconds": 120.0},
                "why": "D and G now learn at the same rate, one D step per G step. " + _IMAGE_FIX_WHY},
    },
    "demo-lr-too-high": {
        "description": "Failure demo: Adam at lr 0.02 for both nets. Every update overshoots: D's loss jumps into the "
                       "tens and hundreds (a balanced game sits near 1.4), G's into the hundreds, and the samples stay "
                       "noise. Monitor: the loss chart and the health panel (diverged).",
        "config": dict(_DEMO_MLP, lr_d=0.02, lr_g=0.02),
        "fix": {"preset": "fast-mnist", "settings": {"lr_d": 2e-3, "lr_g": 2e-3, "max_seconds": 120.0},
                "why": "Ten times smaller steps (2e-3). " + _IMAGE_FIX_WHY},
    },
    # ---- the 2-D playground's scenarios (ring-8). `playground` is the title its preset picker shows and
    # `iterations` how long each needs to show its behaviour (benchmarks/playground_speed.py --presets measures it).
    # They are ordinary runs too (CLI, Train, Learn): the playground takes the fields it has from them.
    "2d-playground": {
        "description": "The playground's default: non-saturating GAN, 3×64 MLPs, Adam 1e-3, batch 128 and a light R1 "
                       "penalty (γ = 0.1): covers all 8 modes of ring-8 within about 3,000 iterations.",
        "config": dict(_PLAYGROUND), "playground": "Default", "iterations": 3000,
    },
    "demo-mode-collapse": {
        "description": "Failure demo on ring-8: non-saturating GAN with no regulariser and a small D (2×16). D can only "
                       "draw one bump, so G squeezes all its points into one small cloud that D then chases around the "
                       "ring: 0–1 of 8 modes covered, and a huge KL. Monitor: the scatter, the mode-coverage chart and "
                       "the health panel (mode collapse).",
        "config": dict(_PLAYGROUND, r1_gamma=0.0, d_hidden=[16, 16], steps=1500, max_seconds=60, log_every=5,
                       sample_every=25, checkpoint_every=500, threads=1),
        "playground": "Vanilla GAN collapses on ring-8", "iterations": 3000,
        "fix": {"preset": "2d-playground", "settings": {"d_hidden": [64, 64, 64]},
                "why": "The fix run is the playground's default: a D of 3 layers of 64 with a light R1 penalty, which "
                       "covers 7-8 of the 8 modes within about 500 steps."},
    },
    "2d-wgan-gp": {
        "description": "Wasserstein critic with a gradient penalty on ring-8, 5 critic steps per G step, Adam β = (0.5, "
                       "0.9): covers every mode. λ = 1 here: the paper's λ = 10 also gets there but needs more "
                       "iterations on modes this sharp.",
        "config": dict(_PLAYGROUND, loss="wgan-gp", r1_gamma=0.0, n_critic=5, gp_lambda=1.0, beta2=0.9, steps=2000),
        "playground": "WGAN-GP covers every mode", "iterations": 2000,
    },
    "2d-lsgan": {
        "description": "Least-squares loss (Mao et al. 2017) on ring-8: D regresses real to 1 and fake to 0, so its "
                       "surface is a smooth bowl and far-away fakes still get a strong pull. With no regulariser it "
                       "wobbles on the way (modes found, lost and found again) and covers all 8 by about 2,000 iterations.",
        "config": dict(_PLAYGROUND, loss="lsgan", r1_gamma=0.0, steps=2000), "playground": "LSGAN", "iterations": 2000,
    },
    "2d-d-too-strong": {
        "description": "Failure demo on ring-8: the saturating minimax loss with D trained 3× per G step at 30× G's "
                       "rate. D rejects every fake with certainty, log(1 − D(G(z))) goes flat, G's push falls to ~0 "
                       "and G stops learning.",
        "config": dict(_PLAYGROUND, loss="minimax", r1_gamma=0.0, n_critic=3, lr_d=3e-3, lr_g=1e-4,
                       g_hidden=[32, 32], steps=1000),
        "playground": "Minimax loss: G's gradient vanishes", "iterations": 1000,
    },
    "2d-lr-too-high": {
        "description": "Failure demo on ring-8: Adam at 0.05 (β1 = 0.9) for both nets. Every update overshoots, G's "
                       "push explodes and the points are flung across (and off) the plane instead of settling on the modes.",
        "config": dict(_PLAYGROUND, lr_d=5e-2, lr_g=5e-2, beta1=0.9, r1_gamma=0.0, steps=1000),
        "playground": "Learning rate too high", "iterations": 1000,
    },
}
# Restorers: G width 32 and an EMA of G, the settings docs/figures.md measures against the alternatives.
_RESTORER = dict(arch="dcgan28", g_features=32, d_features=16, loss="bce", lr_d=2e-4, lr_g=1e-3, beta1=0.5,
                 beta2=0.999, batch_size=64, l1_weight=100.0, steps=0, max_seconds=240, grid_size=10, sample_every=100,
                 log_every=10, eval_every=200, checkpoint_every=1000, init="dcgan", ema=0.99)
for _data, _arch, _short in (("mnist-embedded", "dcgan28", "mnist"), ("fashion-mnist", "dcgan28", "fashion-mnist"),
                             ("cifar10", "dcgan32", "cifar10")):
    PRESETS[f"inpaint-{_short}"] = {
        "description": f"Inpainting restorer on {_data}: a U-Net G fills a centre hole (half the side), a PatchGAN D "
                       f"judges (damaged, restored) pairs; adversarial + 100·L1, 4 minutes on a CPU.",
        "config": dict(_RESTORER, dataset=_data, arch=_arch, task="inpaint", mask="centre")}
    PRESETS[f"superres-{_short}"] = {
        "description": f"Super-resolution restorer on {_data}: ×4 (average-pooled input, e.g. 7×7 → 28×28), U-Net G, "
                       f"PatchGAN D; adversarial + 100·L1, 4 minutes on a CPU.",
        "config": dict(_RESTORER, dataset=_data, arch=_arch, task="superres", factor=4)}
DEFAULT_IMAGE_PRESET = "fast-mnist"
DEFAULT_POINTS_PRESET = "2d-default"


def preset_names() -> list[str]:
    return list(PRESETS)


def playground_presets() -> dict[str, str]:
    """{playground title: preset name} for the entries the 2-D playground offers, in table order."""
    return {p["playground"]: name for name, p in PRESETS.items() if "playground" in p}


def build_config(preset: str | None = None, **overrides) -> RunConfig:
    """Defaults ← preset ← overrides. With no preset the defaults follow the dataset (images vs 2-D points).

    Raises ConfigError (unvalidated combinations are left to `validate()`, so a UI can show them)."""
    if preset and preset not in PRESETS:
        raise ConfigError({"preset": f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"})
    if not preset:
        dataset = overrides.get("dataset", RunConfig.dataset)
        is_points = dataset in DATASETS and dataset_info(dataset).kind == "points"
        preset = DEFAULT_POINTS_PRESET if is_points else DEFAULT_IMAGE_PRESET
    base = dict(PRESETS[preset]["config"])
    if "dataset" in overrides and preset in (DEFAULT_IMAGE_PRESET, DEFAULT_POINTS_PRESET):
        dataset = overrides["dataset"]
        if dataset in DATASETS and not dataset_info(dataset).num_classes:
            base["conditional"] = False  # the default is conditional only where labels exist
            base["grid_size"] = 64
    if "steps" in overrides and "max_seconds" not in overrides:
        base["max_seconds"] = 0.0  # an explicit step count replaces the preset's time limit
    if "max_seconds" in overrides and "steps" not in overrides:
        base["steps"] = 0  # an explicit time limit replaces the preset's step count
    return RunConfig.from_dict({**base, **overrides, "preset": preset})
