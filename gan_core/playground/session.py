"""The 2-D GAN playground: one small GAN on a point set, stepped by hand or in bursts, and what it hands the page
to draw (pictures and numbers come from the pure functions of plane.py, re-exported here).

The maths of an update is the GAN's (gan.py), the same as a training run's. What is the playground's own: it is
stepped from the page a few hundred iterations per refresh, single D-only/G-only steps and a slow-motion
walkthrough need the pieces of an iteration apart, and D and G get their own optimiser. Nothing here imports
streamlit.
"""
from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from ..config import FIELD_INFO
from ..data import DatasetError, PointSet, load_points, points_from_array
from ..engine.gan import GAN, make_optimizer
from ..engine.point_metrics import mode_metrics
from ..engine.threads import torch_threads
from ..losses import Loss
from ..models import build_models
from ..presets import PRESETS as CONFIG_PRESETS
from ..presets import build_config, playground_presets
from .plane import d_surface, generator_manifold, gradient_field, grid_density, kl_js, true_density

DATASET_CHOICES = ["ring-8", "grid-25", "spiral", "two-moons", "line", "custom"]
OPTIMIZERS = ["adam", "sgd"]
EVAL_SAMPLES = 2500  # VEEGAN / Unrolled-GAN evaluate 2,500 generated samples
MAX_CSV_BYTES = 1_000_000
MAX_CSV_POINTS = 20_000


# ---------------------------------------------------------------------- settings
def _s(default, help, **meta):
    return field(default=default, metadata={"help": help, **meta})


def _run(name: str, default, note: str = "", **narrower):
    """A setting that is a RunConfig field: its help text, choices and range come from config.py (one place),
    narrowed where the playground's widgets need tighter bounds; `note` adds what matters on 2-D points."""
    meta = FIELD_INFO[name].metadata
    choices = meta.get("choices")
    shared = {k: meta[k] for k in ("min", "max") if k in meta}
    if choices is not None:
        shared["choices"] = choices() if callable(choices) else list(choices)
    return _s(default, meta["help"] + (" " + note if note else ""), **{**shared, **narrower})


@dataclass(frozen=True)
class PlaygroundSettings:
    """Everything a student can change: a view of a 2-D RunConfig (`run_config()` and back, `from_config()`);
    the fields it shares take their help and ranges from config.py. Its own knobs: `custom` data, equal-width
    layers (layers × width = g_hidden / d_hidden) and an optimiser per net. `LIVE_FIELDS` apply to the running
    GAN; the rest rebuild it."""
    dataset: str = _s("ring-8", "The real distribution G must learn.", choices=DATASET_CHOICES)
    loss: str = _run("loss", "bce")
    z_dim: int = _s(2, "Noise dimensions: 1 (G draws a curve) or 2 (G folds a sheet).", choices=[1, 2])
    noise: str = _run("noise", "gaussian")
    g_layers: int = _s(3, "Hidden layers of G.", min=1, max=6)
    g_width: int = _s(64, "Neurons per hidden layer of G.", min=2, max=512)
    d_layers: int = _s(3, "Hidden layers of D.", min=1, max=6)
    d_width: int = _s(64, "Neurons per hidden layer of D.", min=2, max=512)
    optimizer_d: str = _s("adam", "D's optimiser (SGD is plain SGD, no momentum).", choices=OPTIMIZERS)
    lr_d: float = _run("lr_d", 1e-3, min=1e-6)
    optimizer_g: str = _s("adam", "G's optimiser.", choices=OPTIMIZERS)
    lr_g: float = _run("lr_g", 1e-3, min=1e-6)
    beta1: float = _run("beta1", 0.5)
    beta2: float = _run("beta2", 0.999)
    n_critic: int = _run("n_critic", 1)
    batch_size: int = _run("batch_size", 128, min=2)
    label_smoothing: float = _run("label_smoothing", 0.0)
    r1_gamma: float = _run("r1_gamma", 0.1, "On 2-D points the default 0.1 keeps the vanilla GAN from dropping modes "
                           "of ring-8.", max=100.0)
    gp_lambda: float = _run("gp_lambda", 10.0, max=100.0)
    clip_value: float = _run("clip_value", 0.01, min=1e-4)
    spectral_norm: bool = _run("spectral_norm", False)
    seed: int = _run("seed", 0)

    def problems(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if "choices" in meta and value not in meta["choices"]:
                out[f.name] = f"{f.name} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}"
            elif "min" in meta and not (isinstance(value, (int, float)) and meta["min"] <= value <= meta["max"]):
                out[f.name] = f"{f.name} must be between {meta['min']:g} and {meta['max']:g}; got {value!r}"
        return out

    def validate(self) -> "PlaygroundSettings":
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems.values()))
        return self

    @classmethod
    def from_config(cls, cfg) -> "PlaygroundSettings":
        """The playground's view of a 2-D RunConfig: equal hidden widths become layers × width, its one
        optimiser drives both nets. The inverse of `run_config` on the fields the playground has."""
        shared = {f.name: getattr(cfg, f.name) for f in fields(cls) if f.name in FIELD_INFO}
        for role, hidden in (("g", cfg.g_hidden), ("d", cfg.d_hidden)):
            if len(set(hidden)) != 1:
                raise ValueError(f"the playground's {role.upper()} has equal layers; got {role}_hidden = {hidden}")
            shared[f"{role}_layers"], shared[f"{role}_width"] = len(hidden), hidden[0]
        return cls(**shared, optimizer_d=cfg.optimizer, optimizer_g=cfg.optimizer)

    def run_config(self):
        """The gan_core RunConfig of this GAN (the `2d-default` preset plus our choices)."""
        return build_config("2d-default", dataset=self.dataset if self.dataset != "custom" else "ring-8",
                            z_dim=self.z_dim, noise=self.noise, loss=self.loss, g_hidden=[self.g_width] * self.g_layers,
                            d_hidden=[self.d_width] * self.d_layers, spectral_norm=self.spectral_norm, seed=self.seed,
                            batch_size=self.batch_size, lr_d=self.lr_d, lr_g=self.lr_g, beta1=self.beta1,
                            beta2=self.beta2, n_critic=self.n_critic, label_smoothing=self.label_smoothing,
                            r1_gamma=self.r1_gamma, gp_lambda=self.gp_lambda, clip_value=self.clip_value)


LIVE_FIELDS = {"loss", "optimizer_d", "lr_d", "optimizer_g", "lr_g", "beta1", "beta2", "n_critic", "batch_size",
               "label_smoothing", "r1_gamma", "gp_lambda", "clip_value"}


def settings_help(name: str) -> str:
    return PlaygroundSettings.__dataclass_fields__[name].metadata["help"]


# The playground's presets are entries of config.SCENARIOS (one table): those with a `playground` title, keyed by it.
SCENARIOS: dict[str, dict] = {title: {"preset": name, "description": CONFIG_PRESETS[name]["description"],
                                    "iterations": CONFIG_PRESETS[name]["iterations"]}
                            for title, name in playground_presets().items()}


def preset_settings(name: str, **overrides) -> PlaygroundSettings:
    """The settings of a playground preset (by its title), from its RunConfig entry."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown playground preset {name!r}; choose one of {', '.join(SCENARIOS)}")
    settings = PlaygroundSettings.from_config(build_config(SCENARIOS[name]["preset"]))
    return replace(settings, **overrides).validate()


def link_params(preset: str) -> dict[str, str]:
    """The share-link query that opens the playground on the GAN of a (2-D) config preset: the settings that differ
    from the playground's defaults, as text (the Learn page links its ring-8 demo this way)."""
    settings, defaults = PlaygroundSettings.from_config(build_config(preset)), PlaygroundSettings()
    return {f.name: str(getattr(settings, f.name)) for f in fields(settings)
            if getattr(settings, f.name) != getattr(defaults, f.name)}


# ---------------------------------------------------------------------- data
def make_pointset(name: str, custom_points=None) -> PointSet:
    if name == "custom":
        if custom_points is None or len(custom_points) < 2:
            raise DatasetError("custom data needs at least 2 points: upload a CSV or click on the plot to add some")
        return points_from_array(custom_points, "custom")
    return load_points(name)


def parse_points_csv(data: bytes, filename: str = "upload") -> np.ndarray:
    """x, y rows from a small CSV (header optional). Raises DatasetError naming the file and the bad line."""
    if len(data) > MAX_CSV_BYTES:
        raise DatasetError(f"{filename} is {len(data) / 1e6:.1f} MB; the limit is {MAX_CSV_BYTES / 1e6:.0f} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{filename} is not a UTF-8 text file; save it as CSV with two columns x, y") from None
    rows = []
    reader = csv.reader(io.StringIO(text))
    for lineno in itertools.count(1):
        try:
            row = next(reader, None)
        except csv.Error as e:  # e.g. a field over csv's 131,072-character limit
            raise DatasetError(f"{filename}, line {lineno}: not a CSV row of x, y ({e})") from None
        if row is None:
            break
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        try:
            x, y = (float(c) for c in cells[:2]) if len(cells) >= 2 else (float("nan"), None)
        except ValueError:
            if not rows and lineno == 1:  # a header line such as "x,y"
                continue
            raise DatasetError(f"{filename}, line {lineno}: expected two numbers x, y; got {','.join(cells)[:80]!r}") from None
        if y is None:
            raise DatasetError(f"{filename}, line {lineno}: expected two columns x, y; got {','.join(cells)[:80]!r}")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise DatasetError(f"{filename}, line {lineno}: x and y must be finite numbers")
        rows.append((x, y))
        if len(rows) > MAX_CSV_POINTS:
            raise DatasetError(f"{filename} has more than {MAX_CSV_POINTS:,} points; keep at most {MAX_CSV_POINTS:,}")
    if len(rows) < 2:
        raise DatasetError(f"{filename} holds {len(rows)} point(s); at least 2 rows of x, y are needed")
    return np.asarray(rows, dtype=np.float32)


# ---------------------------------------------------------------------- the engine
@dataclass
class SubStep:
    """One stage of a slow-motion iteration: a title, the sentence a teacher would say, and what to draw."""
    title: str
    sentence: str
    data: dict


def _optimizer(kind: str, params, lr: float, s: PlaygroundSettings):
    """Plain SGD (no momentum) or per-tensor Adam: nets this small gain nothing from a fused kernel."""
    return make_optimizer(kind, params, lr, (s.beta1, s.beta2), torch.device("cpu"), fused=False)


def _locked(method):
    """One caller at a time: a page rerun and a fragment refresh must never step the same GAN together."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return wrapper


class Playground:
    """One 2-D GAN. step_d / step_g / step / run(n) never read back from the device; `flush()` does, once."""

    threads = 1  # nets this small train fastest on one core: more intra-op threads only add sync (and thrash under load)

    def __init__(self, settings: PlaygroundSettings | None = None, custom_points=None):
        self.lock = threading.RLock()
        self.settings = settings or PlaygroundSettings()
        self.custom_points = None
        self.reset(self.settings, custom_points)

    @_locked
    def reset(self, settings: PlaygroundSettings | None = None, custom_points=None) -> None:
        """Fresh nets and optimisers at iteration 0 (same seed, same start). Atomic: bad data raises and
        leaves the engine as it was."""
        s = (settings or self.settings).validate()
        custom = self.custom_points if custom_points is None else np.asarray(custom_points, dtype=np.float32)
        points = make_pointset(s.dataset, custom)
        self.settings, self.custom_points, self.points = s, custom, points
        self.extent = float(points.extent)
        self.rng = torch.Generator().manual_seed(s.seed)
        cfg = s.run_config()
        G, D = build_models(cfg, 0, 0)
        self.gan = GAN(cfg, G, D, "cpu", self.rng, opt_d=_optimizer(s.optimizer_d, D.parameters(), s.lr_d, s),
                       opt_g=_optimizer(s.optimizer_g, G.parameters(), s.lr_g, s))
        self.gan.joint_d = False  # D scores real and fake in two calls, as the playground always has (same numbers)
        self.iteration = self.d_steps = self.g_steps = 0
        self.history: deque = deque(maxlen=5000)  # rows of {iteration, d_steps, g_steps, d_loss, g_loss}
        self._acc = torch.zeros(2)
        self._acc_n = [0, 0]
        fixed = torch.Generator().manual_seed(s.seed + 1)  # display/eval samples: fixed, so the picture moves smoothly
        self.eval_z = self.noise(EVAL_SAMPLES, fixed)
        self.eval_real = self.points.sample(EVAL_SAMPLES, fixed)
        self._true_density = None

    @_locked
    def apply(self, settings: PlaygroundSettings, custom_points=None) -> bool:
        """Switch to new settings. Live ones (loss, optimisers, rates, n_critic, regularisers...) keep the nets;
        anything else rebuilds them. Returns True when the GAN was reset; raises (changing nothing) on bad data."""
        settings = settings.validate()
        custom = self.custom_points if custom_points is None else np.asarray(custom_points, dtype=np.float32)
        old = self.settings
        structural = {f.name for f in fields(settings) if getattr(old, f.name) != getattr(settings, f.name)} - LIVE_FIELDS
        custom_changed = settings.dataset == "custom" and not _same_points(custom, self.custom_points)
        if structural or custom_changed:
            self.reset(settings, custom)
            return True
        self.settings, self.custom_points = settings, custom
        gan = self.gan
        gan.cfg = settings.run_config()
        gan.loss = gan.cfg.loss_info
        for role, net in (("d", gan.D), ("g", gan.G)):
            kind, lr = getattr(settings, f"optimizer_{role}"), getattr(settings, f"lr_{role}")
            rebuild = getattr(old, f"optimizer_{role}") != kind or (
                kind == "adam" and (old.beta1, old.beta2) != (settings.beta1, settings.beta2))
            if rebuild:
                setattr(gan, f"opt_{role}", _optimizer(kind, net.parameters(), lr, settings))
            else:
                for group in getattr(gan, f"opt_{role}").param_groups:
                    group["lr"] = lr
        return False

    # ------------------------------------------------------------------ pieces
    @property
    def G(self) -> torch.nn.Module:
        return self.gan.G

    @property
    def D(self) -> torch.nn.Module:
        return self.gan.D

    @property
    def loss(self) -> Loss:
        """The registry's Loss object the GAN trains with (what D's scores mean, how G is pushed)."""
        return self.gan.loss

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.gan.noise(n, generator)

    def real_batch(self, n: int | None = None) -> torch.Tensor:
        return self.points.sample(n or self.settings.batch_size, self.rng)

    # ------------------------------------------------------------------ stepping
    @_locked
    def step_d(self) -> torch.Tensor:
        """One update of D on a fresh real batch and a fresh batch of fakes."""
        n = self.settings.batch_size
        z = self.noise(n)  # noise before the real batch: the order every playground number was measured with
        loss = self.gan.d_step(self.real_batch(n), z=z).loss
        self.d_steps += 1
        self._acc[0] += loss
        self._acc_n[0] += 1
        return loss

    @_locked
    def step_g(self) -> torch.Tensor:
        """One update of G against the current D."""
        real = self.real_batch() if self.gan.loss.relativistic else None
        loss = self.gan.g_step(real=real)
        self.g_steps += 1
        self._acc[1] += loss
        self._acc_n[1] += 1
        return loss

    @_locked
    def step(self) -> None:
        """One iteration: n_critic D updates, then one G update."""
        for _ in range(self.settings.n_critic):
            self.step_d()
        self.step_g()
        self.iteration += 1

    @_locked
    def run(self, n: int, max_seconds: float | None = None) -> int:
        """Up to n iterations (fewer if `max_seconds` runs out), then one read-back of the mean losses into
        `history`. Returns how many iterations ran."""
        start, done = time.perf_counter(), 0
        with torch_threads(self.threads):
            while done < n:
                self.step()
                done += 1
                if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    break
        self.flush()
        return done

    @_locked
    def flush(self) -> dict | None:
        """The one host sync: mean D and G losses since the last flush, as a history row."""
        if not any(self._acc_n):
            return None
        d_sum, g_sum = self._acc.tolist()
        row = {"iteration": self.iteration, "d_steps": self.d_steps, "g_steps": self.g_steps,
               "d_loss": d_sum / self._acc_n[0] if self._acc_n[0] else None,
               "g_loss": g_sum / self._acc_n[1] if self._acc_n[1] else None}
        self._acc.zero_()
        self._acc_n = [0, 0]
        self.history.append(row)
        return row

    # ------------------------------------------------------------------ slow motion
    @_locked
    def walkthrough(self, show: int = 64) -> list[SubStep]:
        """Run one iteration (one D and one G update from the same batch) and return its six stages.

        Both gradients are taken before either update, so each picture shows exactly what its network saw;
        `show` caps how many points each stage carries for drawing."""
        s, gan = self.settings, self.gan
        z = self.noise(s.batch_size)
        real = self.real_batch()
        surface_before = d_surface(self.D, gan.loss, self.extent)
        fake = self.G(z)
        loss_d, d_real, d_fake = gan.d_loss(real, fake.detach())
        loss_g = gan.g_loss(fake, real=real)
        g_params = list(self.G.parameters())
        grads = torch.autograd.grad(loss_g, [fake, *g_params], retain_graph=False)
        x_grad, g_grads = grads[0], grads[1:]
        gan.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        d_grad_norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.D.parameters()])))
        g_grad_norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in g_grads])))
        gan.opt_d.step()
        if gan.loss.clip_weights:
            gan.clip_weights()
        gan.opt_g.zero_grad(set_to_none=True)
        for p, g in zip(g_params, g_grads):
            p.grad = g
        gan.opt_g.step()
        with torch.no_grad():
            fake_after = self.G(z)
        self.d_steps += 1
        self.g_steps += 1
        self.iteration += 1
        self._acc += torch.stack([loss_d.detach(), loss_g.detach()])
        self._acc_n = [self._acc_n[0] + 1, self._acc_n[1] + 1]
        self.flush()

        np_ = lambda t: t.detach()[:show].numpy().copy()  # noqa: E731
        prob = gan.loss.scores == "probability"
        score_word = "the probability that it is real (sigmoid of D's logit)" if prob else \
            "a critic score (higher means 'looks more real'; not a probability)"
        noise_words = f"{'N(0, 1)' if s.noise == 'gaussian' else 'U(-1, 1)'} noise in {s.z_dim}-D"
        return [
            SubStep("1. Sample noise", f"Draw a batch of {s.batch_size} noise vectors z from {noise_words} "
                    f"(and a batch of {s.batch_size} real points).", {"z": np_(z), "real": np_(real)}),
            SubStep("2. G maps noise to points", "The generator network turns every z into a point of the plane: "
                    "these are the fake samples.", {"z": np_(z), "fake": np_(fake), "real": np_(real)}),
            SubStep("3. D scores real and fake points", f"The discriminator gives every point {score_word}.",
                    {"real": np_(real), "fake": np_(fake), "d_real": np_(d_real), "d_fake": np_(d_fake),
                     "surface": surface_before}),
            SubStep("4. The losses are computed", f"From those scores, D's loss = {loss_d.item():.4f} (D wants to "
                    f"tell real from fake) and G's loss = {loss_g.item():.4f} (G wants D to call its points real).",
                    {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "real": np_(real), "fake": np_(fake),
                     "surface": surface_before}),
            SubStep("5. The gradients are computed", "Backpropagation gives each network's gradient; the arrows show "
                    "−∇x of G's loss at each fake point: where G would like to move it.",
                    {"fake": np_(fake), "direction": (-x_grad * x_grad.shape[0])[:show].numpy().copy(),
                     "d_grad_norm": d_grad_norm, "g_grad_norm": g_grad_norm, "surface": surface_before}),
            SubStep("6. The update is applied", "Each optimiser takes one step: D's surface shifts, and G's weights "
                    "change so the same noise now lands on the moved points.",
                    {"fake_before": np_(fake), "fake_after": np_(fake_after), "real": np_(real)}),
        ]

    # ------------------------------------------------------------------ reading out
    @torch.no_grad()
    def generate(self, z: torch.Tensor | None = None) -> np.ndarray:
        return self.G(self.eval_z if z is None else z).numpy()

    def true_density(self, bins: int = 80) -> np.ndarray:
        if self._true_density is None:
            self._true_density = true_density(self.points, self.extent, bins)
        return self._true_density

    @_locked
    def metrics(self) -> dict:
        """Losses, KL/JS on a grid, G's push (mean length of −∇x loss_G at its points) and, for mixtures, the
        mode metrics, all from EVAL_SAMPLES fixed-noise samples."""
        with torch_threads(self.threads):
            return self._metrics()

    def _metrics(self) -> dict:
        fake = self.generate()
        real = self.eval_real.numpy()
        last = self.history[-1] if self.history else {}
        out = {"iteration": self.iteration, "d_steps": self.d_steps, "g_steps": self.g_steps,
               "d_loss": last.get("d_loss"), "g_loss": last.get("g_loss")}
        out.update(kl_js(real, fake, self.extent))
        push = gradient_field(self.G, self.D, self.loss, self.eval_z[:256], self.eval_real)["direction"]
        out["g_push"] = float(np.linalg.norm(push, axis=1).mean())  # ≈ 0: G gets no signal (vanishing gradients)
        if self.points.centres is not None:
            out.update(mode_metrics(fake, self.points.centres.numpy(), self.points.sigma))
        return out

    @_locked
    def figure_layers(self, arrows: int = 64, heatmap_n: int = 60) -> dict:
        """Everything the plane view draws, as numpy arrays."""
        s = self.settings
        with torch_threads(self.threads):
            return self._figure_layers(s, arrows, heatmap_n)

    def _figure_layers(self, s, arrows, heatmap_n) -> dict:
        return {
            "extent": self.extent,
            "real": self.eval_real[:500].numpy(),
            "fake": self.generate(self.eval_z[:500]),
            "surface": d_surface(self.D, self.loss, self.extent, heatmap_n),
            "manifold": generator_manifold(self.G, s.z_dim, s.noise),
            "gradients": gradient_field(self.G, self.D, self.loss, self.eval_z[:arrows], self.eval_real),
            "density": self.true_density(),
        }


def _same_points(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))


__all__ = ["DATASET_CHOICES", "SCENARIOS", "PlaygroundSettings", "Playground", "SubStep", "d_surface", "generator_manifold",
           "gradient_field", "grid_density", "kl_js", "torch_threads", "true_density", "mode_metrics", "parse_points_csv",
           "preset_settings", "make_pointset", "settings_help", "link_params"]
