"""RunConfig: one plain, validated, JSON-round-trippable description of a training run, plus presets.

Every field carries its own help text and range here, so the CLI flags, the dashboard widgets and the
validation messages all come from one place.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import reprlib
from dataclasses import dataclass, field, fields

from .data import DATASETS, dataset_info
from .errors import StudioError
from .extras import EXTRAS, install_hint
from .losses import LOSSES, Loss
from .models import ARCHS, arch_info
from .safe_io import UnsafeFile, parse_json, read_bytes
from .tasks import DOWNSAMPLERS, FACTORS, MASK_KINDS, TASKS

MAX_CONFIG_BYTES = 100_000  # a config.json is ~2 kB; the same cap for the CLI, uploads, checkpoints and run folders
_SHOW = reprlib.Repr()
_SHOW.maxstring, _SHOW.maxother, _SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict = 40, 40, 2, 6, 4


def show(value) -> str:
    """A value quoted in a message: short, one line, whatever it is."""
    return _SHOW.repr(value).replace("\n", "\\n").replace("\r", "\\r")


class ConfigError(StudioError, ValueError):
    """Raised with {field: message} for every field that is wrong, so a UI can show each next to its widget."""

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


def _f(default, help, **meta):
    kw = {"default_factory": (lambda d=default: list(d))} if isinstance(default, (list, tuple)) else {"default": default}
    return field(metadata={"help": help, **meta}, **kw)


@dataclass(frozen=True)
class RunConfig:
    """Frozen: built and validated once at the edge (form, CLI, JSON), then trusted everywhere inside."""
    # --- data
    dataset: str = _f("mnist-embedded", "Training data. `mnist-embedded` (10k digits shipped inside the package) works offline.",
                      choices=lambda: list(DATASETS))
    data_root: str = _f("./data", "Folder where torchvision datasets are downloaded to / read from, or the image folder for `image-folder`.")
    image_size: int = _f(0, "Side of the square images in pixels; 0 = the architecture's native size (28, 32 or 64).", min=0, max=256)
    channels: int = _f(0, "1 = grayscale, 3 = RGB; 0 = the dataset's own.", choices=[0, 1, 3])
    # --- model
    arch: str = _f("dcgan28", "Network family for G and D. " + " ".join(f"`{name}`: {arch.description}"
                                                                          for name, arch in ARCHS.items()),
                   choices=lambda: list(ARCHS))
    z_dim: int = _f(100, "Length of the noise vector z fed to G. Tutorials use 100 (tutorial 001 uses 96); 2-D demos use 2.", min=1, max=1024)
    noise: str = _f("gaussian", "Distribution of z: `gaussian` N(0, 1) (tutorials 000/002/004) or `uniform` U(-1, 1) (tutorial 001).",
                    choices=["gaussian", "uniform"])
    conditional: bool = _f(False, "Class-conditional GAN (cGAN): G and D also see the digit label, so you can ask for a given class.")
    g_hidden: list = _f([256, 256], "Hidden widths of the MLP generator (`mlp`, `mlp2d`). Tutorial 002: 256,256; tutorial 001: 1024,1024.",
                        item_min=1, item_max=8192, max_len=8)
    d_hidden: list = _f([256, 256], "Hidden widths of the MLP discriminator (`mlp`, `mlp2d`). Both seeds: 256,256.",
                        item_min=1, item_max=8192, max_len=8)
    leaky_slope: float = _f(0.2, "Negative slope of D's LeakyReLU for `mlp`/`mlp2d`. Tutorial 002: 0.2; tutorial 001: 0.01.", min=0.0, max=1.0)
    g_features: int = _f(64, "Width multiplier of the convolutional generator (channels scale with it). DCGAN default 64.", min=4, max=512)
    d_features: int = _f(64, "Width multiplier of the convolutional discriminator. DCGAN default 64.", min=4, max=512)
    d_norm: str = _f("batch", "Normalisation inside convolutional D: `batch` (DCGAN), `layer` (advised for WGAN-GP) or `none`.",
                     choices=["batch", "layer", "none"])
    spectral_norm: bool = _f(False, "Spectral normalisation on every D layer (Miyato et al. 2018): keeps D Lipschitz, steadier training.")
    init: str = _f("dcgan", "Weight init: `dcgan` N(0, 0.02) (tutorial 004), `xavier` (tutorial 001) or `default` (PyTorch's; tutorials 000/002).",
                   choices=["dcgan", "xavier", "default"])
    # --- task: generate, or restore (inpainting / super-resolution)
    task: str = _f("generate", "What the run learns. `generate`: new images from noise (every tutorial). `inpaint`: fill "
                   "holes in damaged images; `superres`: draw low-resolution images at full size (an image-to-image GAN, "
                   "pix2pix/SRGAN style: G sees the damaged image, D judges (damaged, restored) pairs).",
                   choices=lambda: list(TASKS))
    mask: str = _f("centre", "`inpaint`: the holes made in each training image: `centre` (a square, half the side), "
                   "`left`/`bottom` half, `random` blocks, `strokes` (scratches) or `mixed` (a random kind per batch).",
                   choices=list(MASK_KINDS))
    factor: int = _f(4, "`superres`: how much smaller the input is (4: 7×7 → 28×28 digits).", choices=list(FACTORS))
    downsample: str = _f("area", "`superres`: how the low-res input is made: `area` (each pixel the mean of a block; the "
                         "restorer keeps those means exactly) or `bicubic`.", choices=list(DOWNSAMPLERS))
    l1_weight: float = _f(100.0, "Restorers: weight λ of the L1 reconstruction loss beside the adversarial one "
                          "(pix2pix uses 100). 0 = adversarial only.", min=0.0, max=10_000.0)
    # --- loss and regularisers
    loss: str = _f("bce", "Adversarial loss. " + " ".join(f"`{name}`: {loss.description}" for name, loss in LOSSES.items()),
                   choices=lambda: list(LOSSES))
    label_smoothing: float = _f(0.0, "One-sided label smoothing: real target = 1 - value for D. Typical 0.1.", min=0.0, max=0.5)
    instance_noise: float = _f(0.0, "Std of Gaussian noise added to D's inputs, annealed linearly to 0 over the run. Typical 0.1.",
                               min=0.0, max=2.0)
    r1_gamma: float = _f(0.0, "R1 penalty weight γ on D's gradient at real data (Mescheder 2018). Typical 1-10; 0 = off.", min=0.0, max=1000.0)
    gp_lambda: float = _f(10.0, "Gradient-penalty weight λ for `wgan-gp`. The paper uses 10.", min=0.0, max=1000.0)
    clip_value: float = _f(0.01, "Weight-clipping bound c for `wgan`. The paper uses 0.01.", min=1e-6, max=10.0)
    n_critic: int = _f(1, "D (critic) updates per iteration. WGAN uses 5; the tutorials 1.", min=1, max=20)
    g_every: int = _f(1, "Update G every k-th iteration. Tutorial 000 uses 2.", min=1, max=20)
    grad_clip: float = _f(0.0, "Clip the gradient norm of G and D to this value; 0 = off.", min=0.0, max=1e4)
    # --- optimiser
    optimizer: str = _f("adam", "Optimiser for both nets: `adam` (all tutorials) or `sgd`.", choices=["adam", "sgd"])
    lr_d: float = _f(2e-4, "Learning rate for D. DCGAN: 2e-4; tutorial 002: 3e-4; tutorial 001: 1e-3. Different from lr_g = TTUR.", min=0.0, max=1.0,
                     min_exclusive=True)
    lr_g: float = _f(2e-4, "Learning rate for G. DCGAN: 2e-4; tutorial 002: 3e-4; tutorial 001: 1e-3.", min=0.0, max=1.0, min_exclusive=True)
    beta1: float = _f(0.5, "Adam β1 (momentum for SGD). DCGAN: 0.5; tutorial 002 uses Adam's default 0.9; WGAN-GP 0.0.", min=0.0, max=0.999)
    beta2: float = _f(0.999, "Adam β2. Almost always 0.999; WGAN-GP uses 0.9.", min=0.0, max=0.9999)
    batch_size: int = _f(64, "Images per batch. The tutorials use 64 or 128. Under torchrun it is per process: "
                         "one step then trains on (processes × batch_size) images.", min=1, max=4096)
    # --- length, device, speed
    steps: int = _f(2000, "Training iterations (each = n_critic D updates + one G update); 0 = no limit (then set max_seconds).",
                    min=0, max=10_000_000)
    max_seconds: float = _f(0.0, "Stop after this many seconds of training; 0 = no time limit.", min=0.0, max=30 * 86400.0)
    seed: int = _f(0, "Random seed: same seed, same run (on the CPU).", min=0, max=2**31 - 1)
    device: str = _f("auto", "`auto` picks the GPU when there is one, else the CPU.", choices=["auto", "cpu", "cuda", "mps"])
    precision: str = _f("auto", "`auto`: bf16 autocast where the hardware runs it natively (CUDA GPUs with bf16, CPUs "
                        "with AMX), else fp32. `bf16` forces it (slower than fp32 on CPUs without AMX; falls back to "
                        "fp32 if unsupported), `fp32` forbids it.", choices=["auto", "fp32", "bf16"])
    lr_decay: float = _f(0.0, "Share of the run's budget over which both learning rates fall linearly to 0, so a run "
                         "that knows when it ends finishes settled instead of mid-swing (0.5 = over the second half; "
                         "the clock counts when max_seconds ends the run first, rank 0's under --workers; Train "
                         "longer stretches the schedule to the new end). 0 = constant rates. The 2-D playground, stepped by hand, has no end and "
                         "keeps its rates.", min=0.0, max=1.0)
    lr_decay_after: int = _f(0, "The lr_decay never begins before this iteration, on steps or on the clock: a short "
                             "run keeps full rates until it has learned the basics, then falls to 0 by its end. "
                             "0 = no such floor.",
                             min=0, max=10_000_000)
    ema: float = _f(0.0, "Decay of an exponential moving average of G's weights used for samples (StyleGAN style); 0 = off, "
                    "typical 0.999.", min=0.0, max=0.99999)
    compile: bool = _f(False, "torch.compile the networks (falls back with a note if compilation is unavailable).")
    threads: int = _f(0, "CPU threads per training step; 0 = auto: at most this process's share of the cores (runs "
                      "in one process and torchrun's processes split them), and the run measures 1 thread against "
                      "that share and keeps the faster, checking again now and then (a pool of threads collapses "
                      "when other programs keep the cores busy). Set it to fix the count. Ignored on a GPU.",
                      min=0, max=256)
    sync_bn: bool = _f(False, "Multi-GPU runs (torchrun) only: BatchNorm statistics over the whole global batch "
                       "(SyncBatchNorm, CUDA GPUs) instead of each GPU's own share; ignored in one process. "
                       "A D with a gradient penalty (wgan-gp, R1) keeps per-GPU BatchNorm.")
    # --- logging
    log_every: int = _f(20, "Read the metrics back from the device every k iterations (one host sync per k).", min=1, max=100_000)
    sample_every: int = _f(200, "Save a fixed-noise sample grid every k iterations.", min=1, max=1_000_000)
    checkpoint_every: int = _f(1000, "Save a checkpoint every k iterations (and always at the end).", min=1, max=10_000_000)
    grid_size: int = _f(64, "Number of fixed-noise samples in each grid.", min=1, max=400)
    eval_every: int = _f(200, "Measure sample quality (Fréchet distance, classes covered, confidence) every k iterations, in a "
                         "low-priority background thread, and once at the end; 0 = off. Labelled image datasets only "
                         "(ignored for 2-D runs).", min=0, max=10_000_000)
    eval_samples: int = _f(1000, "Generated samples per quality measurement: more = steadier numbers, slower to measure.",
                           min=100, max=20_000)
    tensorboard: bool = _f(False, "Also write a TensorBoard event file to runs/<id>/tb/: every curve, every grid, the config. "
                           "Needs the optional tensorboard package (pip install tensorboard); view with "
                           "`tensorboard --logdir runs`.")
    mlflow: bool = _f(False, "Also log to MLflow: the config as params, metrics by step, grids and the final checkpoint as "
                      "artifacts, to MLFLOW_TRACKING_URI or else a file store `mlruns/` beside the runs folder. Needs the "
                      "optional mlflow-skinny package (pip install mlflow-skinny).")
    name: str = _f("", "Optional run name (letters, digits, - and _).")
    preset: str = _f("", "The preset this config started from (for the record).")

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Build from a dict (JSON, widgets): coerces types and checks every field's range, reporting every bad
        field at once. (Combinations of fields are validate()'s.) A RunConfig that exists has sane fields, so
        nothing downstream sizes a model or a buffer from an unchecked number."""
        if not isinstance(data, dict):
            raise ConfigError({"config": f"expected a JSON object, got {type(data).__name__}"})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known), key=str)
        problems = {show(k)[1:-1] if isinstance(k, str) else show(k): "unknown setting" for k in unknown[:10]}
        values = {}
        for name, value in data.items():
            if name in known:
                try:
                    values[name] = _coerce(known[name], value)
                except ValueError as e:
                    problems[name] = str(e)
        for name, value in values.items():
            msg = _check_field(known[name], value)
            if msg:
                problems[name] = msg
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "config") -> "RunConfig":
        """The one loader for a config we did not build: size cap, nesting cap, then from_dict's checks."""
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError({"config": f"{source} is {len(text):,} bytes; a config is a small JSON file (at most "
                                         f"{MAX_CONFIG_BYTES:,} bytes)"})
        try:
            data = parse_json(text, source)
        except ValueError as e:
            raise ConfigError({"config": str(e)}) from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "RunConfig":
        """A config.json on disk: a regular file only (a FIFO or /dev/urandom is refused at once, unread),
        at most MAX_CONFIG_BYTES."""
        name = str(path)
        if not name.strip():
            raise ConfigError({"config": "the config file name is empty"})
        try:
            data = read_bytes(os.path.abspath(path), max_bytes=MAX_CONFIG_BYTES)
        except UnsafeFile as e:
            raise ConfigError({"config": f"{name}: {str(e).split(': ', 1)[-1]}"}) from None
        except OSError as e:
            raise ConfigError({"config": f"{name}: {e.strerror or e}"}) from None
        return cls.from_json(data, name)

    def replace(self, **changes) -> "RunConfig":
        return RunConfig.from_dict({**self.to_dict(), **changes})

    # ------------------------------------------------------------------ validation
    def problems(self) -> dict[str, str]:
        """Every problem as {field: message a student understands}; empty when the config is runnable."""
        out: dict[str, str] = {}
        for f in fields(self):
            msg = _check_field(f, getattr(self, f.name))
            if msg:
                out[f.name] = msg
        if out:
            return out
        return _check_combination(self)

    def validate(self) -> "RunConfig":
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    @property
    def loss_info(self) -> Loss:
        """The registry's Loss object for `loss` (what D's scores mean, which penalties it needs)."""
        return LOSSES[self.loss]

    @property
    def is_2d(self) -> bool:
        return dataset_info(self.dataset).kind == "points"


FIELD_INFO = {f.name: f for f in fields(RunConfig)}


def field_help(name: str) -> str:
    return FIELD_INFO[name].metadata["help"]


def field_choices(name: str) -> list | None:
    choices = FIELD_INFO[name].metadata.get("choices")
    return choices() if callable(choices) else choices


def _label(name: str) -> str:
    return {"lr_d": "learning rate for D", "lr_g": "learning rate for G", "z_dim": "noise size z_dim",
            "n_critic": "D steps per G step (n_critic)"}.get(name, name.replace("_", " "))


def _coerce(f, value):
    """Turn a widget/JSON/CLI value into the field's type, or raise ValueError naming what was wrong."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    label = _label(f.name)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.strip().lower() in ("true", "1", "yes", "on")
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{label} must be true or false, got {show(value)}")
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{label} must be text, got {show(value)}")
        if len(value) > 4096:
            raise ValueError(f"{label} is {len(value):,} characters long; at most 4096")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"{label} must not contain control characters such as newlines, got {show(value)}")
        return value.strip()
    if kind == "list":
        if isinstance(value, str):
            parts = [p for p in value.replace(" ", ",").split(",") if p]
            try:
                value = [int(p) for p in parts]
            except ValueError:
                raise ValueError(f"{label} must be comma-separated whole numbers like 256,256, got {show(value)}") from None
        if not isinstance(value, (list, tuple)) or len(value) > 64 or \
                not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) < 1e15 for v in value):
            raise ValueError(f"{label} must be a list of whole numbers like [256, 256], got {show(value)}")
        return list(value)
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise ValueError(f"{label} must be a number, got {show(value)}")
        if isinstance(value, str):
            text = value.strip()
            if not text:
                raise ValueError(f"{label} is empty; enter a number")
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{label} must be a number, got {show(value)}") from None
        if not isinstance(value, (int, float)):
            raise ValueError(f"{label} must be a number, got {show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{label} must be a finite number, got {value}")
        if abs(value) > 1e15:
            raise ValueError(f"{label} is out of range, got {show(value)}")
        if kind == "int":
            if float(value) != int(value):
                raise ValueError(f"{label} must be a whole number, got {value}")
            return int(value)
        return float(value)
    raise ValueError(f"unsupported field type {kind}")  # pragma: no cover - a programming error


def _fmt(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


def _check_field(f, value) -> str | None:
    meta, label = f.metadata, _label(f.name)
    choices = meta.get("choices")
    choices = choices() if callable(choices) else choices
    if choices is not None and value not in choices:
        return f"{label} must be one of {', '.join(map(str, choices))}; got {show(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{label} must be a finite number, got {value}"
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and hi is not None:
            low_ok = value > lo if meta.get("min_exclusive") else value >= lo
            if not low_ok or value > hi:
                op = ">" if meta.get("min_exclusive") else "≥"
                return f"{label} must be {op} {_fmt(lo)} and ≤ {_fmt(hi)}, got {_fmt(value)}"
    if isinstance(value, list):
        if not value or len(value) > meta.get("max_len", 8):
            return f"{label} needs 1 to {meta.get('max_len', 8)} layer widths, got {len(value)}"
        bad = [v for v in value if not meta["item_min"] <= v <= meta["item_max"]]
        if bad:
            return f"{label}: every width must be between {meta['item_min']} and {meta['item_max']}, got {bad[0]}"
    if f.name == "name" and value:
        import re
        if len(value) > 48 or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value) or ".." in value:  # `..`: no run id
            return ("name may use letters, digits, '-', '_' and single dots, start with a letter or digit, and be at most "
                    "48 characters")
    return None


def _check_combination(cfg: RunConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    data, arch = dataset_info(cfg.dataset), arch_info(cfg.arch)
    if data.kind != arch.kind:
        if data.kind == "points":
            out["arch"] = (f"`{cfg.arch}` is an image architecture but `{cfg.dataset}` is a 2-D point set; use `mlp2d`")
        else:
            out["arch"] = f"`{cfg.arch}` is for 2-D point sets but `{cfg.dataset}` holds images; pick an image architecture"
    if cfg.conditional and not data.num_classes:
        out["conditional"] = f"a conditional model needs class labels, and `{cfg.dataset}` has none"
    if data.kind == "image" and arch.native_size and cfg.image_size not in (0, arch.native_size):
        out["image_size"] = f"`{cfg.arch}` makes {arch.native_size}×{arch.native_size} images; set image size to 0 or {arch.native_size}"
    if data.kind == "image" and not arch.native_size and cfg.image_size and cfg.image_size < 8:
        out["image_size"] = f"image size must be 0 (native) or at least 8, got {cfg.image_size}"
    if data.kind == "points" and cfg.channels not in (0,):
        out["channels"] = "2-D point sets have no colour channels; leave channels at 0"
    if cfg.arch == "dcgan28" and cfg.batch_size < 2:  # its G has BatchNorm1d, which cannot normalise one sample
        out["batch_size"] = "`dcgan28` normalises over the batch (BatchNorm), so it needs a batch size of at least 2"
    if TASKS[cfg.task].restores:
        out.update(_restorer_problems(cfg, data))
    if cfg.loss_info.r2 and not cfg.r1_gamma:
        out["r1_gamma"] = f"`{cfg.loss}` needs its R1 + R2 penalty: set r1_gamma above 0 (0.1 on 2-D points, 1-10 on images)"
    for extra in EXTRAS:  # an optional package asked for but not installed: say how to install it
        if getattr(cfg, extra) and install_hint(extra):
            out[extra] = install_hint(extra)
    if cfg.steps == 0 and cfg.max_seconds == 0:
        out["steps"] = "set a number of steps, or a time limit in max_seconds (both are 0: the run would never end)"
    if cfg.grid_size > 1 and cfg.conditional and cfg.grid_size < data.num_classes:
        out["grid_size"] = f"a conditional grid needs at least {data.num_classes} samples (one per class), got {cfg.grid_size}"
    return out


def _restorer_problems(cfg: RunConfig, data) -> dict[str, str]:
    from .models import image_size_for
    out = {}
    if data.kind != "image":
        out["task"] = f"`{cfg.task}` restores images, and `{cfg.dataset}` is a 2-D point set"
        return out
    if cfg.loss_info.gradient_penalty or cfg.r1_gamma:
        out["loss"] = "restorers train with bce, lsgan or hinge (no gradient penalty on their patch critic)"
    if cfg.conditional:
        out["conditional"] = "a restorer is conditioned on the damaged image, not on a class label; turn conditional off"
    if image_size_for(cfg) % 4:  # its U-Net halves the size twice (and ×2/×4 super-resolution divides it)
        out["image_size"] = f"a restorer needs an image size divisible by 4, got {image_size_for(cfg)}"
    return out
