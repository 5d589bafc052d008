"""`export-script`: a run as one flat, readable PyTorch file (pytorch/examples' dcgan main.py style), no gan_core.

Why: users ask to take the model they built away as code. The script is assembled from the run's config: the
networks are written out layer by layer from the very modules the trainer builds, and the loss, data and init
helpers are gan_core's own source, so the exported file does the same maths (same seed → same losses on a CPU).
"""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import torch.nn as nn

from ..config import ConfigError, RunConfig
from ..data import (CifarArrays, ImageBatches, PointBatches, PointSet, _randn, _resize, dataset_info, load_points,
                    mixture, read_cifar_batches, read_idx, to_unit_range)
from ..engine.gan import FIXED_NOISE_SEED_OFFSET, GAN, DStep, _uncompiled, has_batchnorm, lr_factor, make_optimizer, sample_noise
from ..engine.pictures import points_image
from ..errors import StudioError
from ..losses import LOSSES, Loss, gradient_penalty, r1_penalty
from ..models import build_models, image_size_for
from ..models.common import Discriminator, Dropout, Generator, add_spectral_norm, init_weights, use_generator
from ..models.fold_conv import (FoldConv2d, FoldConvTranspose2d, _InputGradByFold, _plain, _takes_fold, fold_conv2d,
                                transpose_by_fold, use_fold_kernels)
from ..tasks import TASKS
from . import files as rf


class ExportError(StudioError, ValueError):
    """A run that cannot be exported as a script; the message says why."""


# Where each image dataset lives under --data-root (torchvision's layout) and which files hold it.
IMAGE_FILES = {
    "mnist-embedded": ("MNIST/raw", "t10k"),  # the package's 10k digits are MNIST's test set
    "mnist": ("MNIST/raw", "train"),
    "fashion-mnist": ("FashionMNIST/raw", "train"),
}


def _args(*positional, **optional) -> str:
    """Constructor arguments: the positional ones, then each optional one that differs from its default."""
    parts = [repr(a) for a in positional]
    parts += [f"{k}={v[0]!r}" for k, v in optional.items() if v[0] != v[1]]
    return ", ".join(parts)


def _square(value):
    return value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value


def _conv(m) -> str:
    if m.dilation != (1, 1) or m.groups != 1 or m.padding_mode != "zeros" or any(getattr(m, "output_padding", (0, 0))):
        raise ExportError(f"cannot write {m!r} as code yet")
    return _args(m.in_channels, m.out_channels, _square(m.kernel_size), _square(m.stride), _square(m.padding),
                 bias=(m.bias is not None, True))


LAYER_ARGS = {  # the constructor arguments of every layer the architectures use, defaults left out
    nn.Linear: lambda m: _args(m.in_features, m.out_features, bias=(m.bias is not None, True)),
    nn.Conv2d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.BatchNorm1d: lambda m: _args(m.num_features, eps=(m.eps, 1e-5), momentum=(m.momentum, 0.1)),
    nn.BatchNorm2d: lambda m: _args(m.num_features, eps=(m.eps, 1e-5), momentum=(m.momentum, 0.1)),
    nn.GroupNorm: lambda m: _args(m.num_groups, m.num_channels, eps=(m.eps, 1e-5)),
    nn.ReLU: lambda m: "True" if m.inplace else "",
    nn.LeakyReLU: lambda m: _args(m.negative_slope, inplace=(m.inplace, False)),
    nn.Tanh: lambda m: "",
    nn.Sigmoid: lambda m: "",
    nn.Identity: lambda m: "",
    nn.Flatten: lambda m: _args(start_dim=(m.start_dim, 1), end_dim=(m.end_dim, -1)),
    nn.Unflatten: lambda m: _args(m.dim, tuple(m.unflattened_size)),
    nn.MaxPool2d: lambda m: _args(m.kernel_size, m.stride, padding=(m.padding, 0)),
    nn.Upsample: lambda m: _args(scale_factor=(m.scale_factor, None), mode=(m.mode, "nearest"), size=(m.size, None)),
    nn.ZeroPad2d: lambda m: _args(tuple(m.padding)),
}


def layer_source(module: nn.Module) -> str:
    """One layer as a short constructor call; checked by rebuilding it and comparing."""
    if isinstance(module, Dropout):
        return f"Dropout({module.p!r})"
    write = LAYER_ARGS.get(type(module))
    if write is None:
        raise ExportError(f"cannot write layer {type(module).__name__} as code yet")
    text = f"nn.{type(module).__name__}({write(module)})"
    if repr(eval(text, {"nn": nn})) != repr(module):  # noqa: S307 - text we just wrote from a whitelisted layer
        raise ExportError(f"cannot write layer {module!r} as code exactly")
    return text


def sequential_source(body: nn.Sequential, indent: str = "    ") -> str:
    return "nn.Sequential(\n" + "".join(f"{indent}{layer_source(m)},\n" for m in body) + ")"


def _src(*objects) -> str:
    return "\n\n\n".join(inspect.getsource(o).rstrip() for o in objects)


def _data_section(cfg: RunConfig) -> str:
    """Code that puts the training set in `batches` (images: uint8 on the device; 2-D: a point sampler). The readers
    and samplers are data.py's own functions (in the script above this section); only finding the files is new."""
    if cfg.is_2d:
        points = load_points(cfg.dataset)
        if points.centres is None:
            raise ExportError(f"export-script supports the 2-D mixtures (ring-8, grid-25), not `{cfg.dataset}` yet")
        centres = ", ".join(f"[{x!r}, {y!r}]" for x, y in points.centres.tolist())
        return f'''# {cfg.dataset}: {dataset_info(cfg.dataset).description}
points = mixture({cfg.dataset!r}, [{centres}], {points.sigma!r}, {points.extent!r})
batches = PointBatches(points, rng, device)'''
    size, channels = image_size_for(cfg), cfg.channels or dataset_info(cfg.dataset).channels
    if cfg.dataset in IMAGE_FILES:
        folder, prefix = IMAGE_FILES[cfg.dataset]
        load = f'''def find_idx(folder, name):
    """`name` in `folder`, gzipped or not, read as IDX."""
    for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
        if os.path.exists(path):
            return read_idx(path)
    raise SystemExit(f"{{name}} not found in {{folder}} (torchvision's layout: --data-root DIR holding {folder}/)")


folder = os.path.join(opt.data_root, "{folder}")
images = torch.from_numpy(find_idx(folder, "{prefix}-images-idx3-ubyte").copy()).unsqueeze(1)
labels = torch.from_numpy(find_idx(folder, "{prefix}-labels-idx1-ubyte").astype(np.int64))'''
    elif cfg.dataset == "cifar10":
        load = '''arrays, label_list = read_cifar_batches(os.path.join(opt.data_root, "cifar-10-batches-py"))
images = torch.from_numpy(arrays)
labels = torch.tensor(label_list, dtype=torch.long)'''
    else:
        raise ExportError(f"export-script supports MNIST, Fashion-MNIST, CIFAR-10 and 2-D mixtures, not `{cfg.dataset}` yet")
    return f'''{load}
images = _resize(images, {size}, {channels}).to(device)  # resized once at load, never in the loop
data = Data(images, labels.to(device) if CONDITIONAL else None)
batches = ImageBatches(data, rng)'''


def _loss_source(cfg: RunConfig) -> str:
    """The loss registry's entry for this run: its functions' source, then `LOSS = Loss(...)` with its flags."""
    loss = LOSSES[cfg.loss]
    parts = [loss.d, loss.g]
    if "_bce(" in _src(*parts):
        parts.insert(0, LOSSES["bce"].d.__globals__["_bce"])
    flags = "".join(f", {f.name}=True" for f in dataclasses.fields(loss) if f.type == "bool" and getattr(loss, f.name))
    entry = f"LOSS = Loss({loss.d.__name__}, {loss.g.__name__}, {loss.scores!r}, {loss.description!r}{flags})"
    return _src(Loss, *parts, gradient_penalty, r1_penalty) + "\n\n\n" + entry


GAN_FIELDS = ("seed", "z_dim", "noise", "batch_size", "optimizer", "lr_d", "lr_g", "beta1", "beta2", "label_smoothing",
              "r1_gamma", "gp_lambda", "clip_value", "grad_clip", "ema", "instance_noise", "lr_decay",
              "lr_decay_after")  # what gan.GAN reads


def script_for(cfg: RunConfig, steps: int, title: str = "") -> str:
    """The whole exported file for a validated config; `steps` is the default of --steps. The update is gan.py's own
    GAN class, carried verbatim, so the studio and the script cannot drift apart."""
    cfg = cfg.validate()
    if TASKS[cfg.task].restores:
        raise ExportError(f"export-script writes image generators; this run restores images (task `{cfg.task}`), "
                          f"which has no plain-script form yet")
    loss = LOSSES[cfg.loss]
    G, D = build_models(cfg.replace(spectral_norm=False), 0 if cfg.is_2d else (cfg.channels or dataset_info(cfg.dataset).channels),
                        dataset_info(cfg.dataset).num_classes)
    has_conv = any(isinstance(m, nn.Conv2d) for m in D.modules())
    has_dropout = any(isinstance(m, Dropout) for m in D.modules())
    helpers = [Generator, Discriminator]
    if has_conv:  # the kernels the studio trains 1-channel images with on a CPU, so the script's run is the same run
        helpers += [transpose_by_fold, _InputGradByFold, _takes_fold, fold_conv2d, FoldConv2d, FoldConvTranspose2d, _plain,
                    use_fold_kernels]
    if has_dropout:
        helpers += [Dropout, use_generator]
    helpers.append(init_weights)
    if cfg.spectral_norm:
        helpers.append(add_spectral_norm)
    if not cfg.is_2d:
        helpers += [to_unit_range, ImageBatches, _resize]
        helpers += [CifarArrays, read_cifar_batches] if cfg.dataset == "cifar10" else [read_idx]
    else:
        helpers += [PointSet, PointBatches, _randn, mixture, points_image]
    usage = (f"python {{script}} --data-root DIR --steps N   (DIR in torchvision's layout: "
             f"{IMAGE_FILES.get(cfg.dataset, ('cifar-10-batches-py',))[0]}/)") if not cfg.is_2d else "python {script} --steps N"
    settings = ",\n".join(f"    {name}={'opt.seed' if name == 'seed' else repr(getattr(cfg, name))}" for name in GAN_FIELDS)
    shown = "LOSS.display(d.d_real).mean().item()", "LOSS.display(d.d_fake).mean().item()"
    if cfg.is_2d:
        final = """real_points = points.sample(GRID_SIZE, torch.Generator(device).manual_seed(0)).cpu().numpy()
from PIL import Image
Image.fromarray(points_image(real_points, samples.cpu().numpy(), points.extent)).save(opt.out)"""
    else:
        nrow = 10 if cfg.conditional else "math.ceil(math.sqrt(GRID_SIZE))"
        final = f"vutils.save_image(samples.add(1).div(2), opt.out, nrow={nrow}, padding=2, pad_value=0.0)"
    L = []  # the file, in reading order
    # The docstring is fixed text: every value taken from the run (title, names, paths) is a Python literal below it,
    # so a config string holding quotes, backslashes or line breaks stays data and cannot end the string.
    L.append(f'''"""A GAN exported from GAN Studio as one plain PyTorch file (needs only torch and torchvision).

Its settings (the RUN_* names and constants below) come from the run's config.json.
Same seed, same data → the same losses as the studio's run (on a CPU, fp32). Usage:
    {usage.format(script="my_gan.py")}
It prints the losses every --log-every iterations and saves the fixed-noise samples to --out at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import math
import os
from collections import namedtuple
from dataclasses import dataclass, field
from pickle import Unpickler, UnpicklingError
from types import SimpleNamespace
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.utils as vutils

RUN_TITLE = {(title or "A GAN")!r}
RUN_NETWORKS, RUN_OPTIMISER, RUN_DATA, RUN_PRESET, RUN_LOSS = {cfg.arch!r}, {cfg.optimizer!r}, {cfg.dataset!r}, {cfg.preset!r}, {cfg.loss!r}
RUN_LOSS_DESCRIPTION = {loss.description!r}

parser = argparse.ArgumentParser(description=f"{{RUN_TITLE}}: {{__doc__.splitlines()[0]}}")
parser.add_argument("--data-root", default={cfg.data_root!r}, help="folder holding the dataset (torchvision's layout)")
parser.add_argument("--steps", type=int, default={steps}, help="training iterations")
parser.add_argument("--seed", type=int, default={cfg.seed}, help="same seed, same run")
parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
parser.add_argument("--log-every", type=int, default={cfg.log_every}, help="print the losses every k iterations")
parser.add_argument("--out", default="samples.png", help="where the final sample grid goes")
opt = parser.parse_args()
device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if opt.device == "auto" else opt.device)

# The run's settings (its config.json)
N_CRITIC, G_EVERY = {cfg.n_critic}, {cfg.g_every}
CONDITIONAL = {cfg.conditional}
NUM_CLASSES = {G.num_classes}
GRID_SIZE = {cfg.grid_size}
FIXED_NOISE_SEED_OFFSET = {FIXED_NOISE_SEED_OFFSET}


# ---------------------------------------------------------------- building blocks (GAN Studio's own code)
Data = namedtuple("Data", "images labels")
{"" if has_conv else "fold_conv2d = F.conv2d  # conv nets only: a 1-channel image convolution (models/fold_conv.py)"}

{_src(*helpers)}


# ---------------------------------------------------------------- the loss: {cfg.loss} (losses.py)
{_loss_source(cfg)}


# ---------------------------------------------------------------- one GAN and its update (gan.py, verbatim)
{_src(DStep, make_optimizer, sample_noise, has_batchnorm, _uncompiled, lr_factor, GAN)}


cfg = SimpleNamespace(  # what the GAN reads of the run's config
{settings},
    loss_info=LOSS)


# ---------------------------------------------------------------- data
rng = torch.Generator(device=device).manual_seed(opt.seed)  # one stream for data order, noise{", dropout" if has_dropout else ""}


{_data_section(cfg)}

# ---------------------------------------------------------------- networks
torch.manual_seed(opt.seed)  # initial weights: G's layers first, then D's
g_body = {sequential_source(G.body)}
d_body = {sequential_source(D.body)}
init_weights(g_body, {cfg.init!r})
init_weights(d_body, {cfg.init!r})''')
    if cfg.spectral_norm:
        L.append("add_spectral_norm(d_body)")
    L.append(f'''netG = Generator(g_body, cfg.z_dim, NUM_CLASSES).to(device)
netD = Discriminator(d_body, NUM_CLASSES, {D.cond_mode!r}).to(device)''')
    if has_dropout:
        L.append("use_generator(netD, rng)  # dropout masks from the seeded stream too")
    if has_conv:
        L.append('''if device.type == "cpu":  # oneDNN's own memory layout: no reorder around each conv
    netG.to(memory_format=torch.channels_last)
    netD.to(memory_format=torch.channels_last)
    use_fold_kernels(netG)  # 1-channel image convolutions as a product and a fold: the same sums, faster
    use_fold_kernels(netD)''')
    L.append(f'''print(netG)
print(netD)
gan = GAN(cfg, netG, netD, device, rng, num_classes=NUM_CLASSES)
gan.set_fixed_noise(GRID_SIZE)

# ---------------------------------------------------------------- training (the studio's trainer.train_iteration)
for step in range(opt.steps):
    gan.follow_schedule(step / opt.steps, step=step)  # noise annealed, rates decayed over the last lr_decay
    g_update = step % G_EVERY == 0
    reuse_fake = g_update and N_CRITIC == 1  # one G forward serves both updates, as in pytorch/examples' dcgan
    for _ in range(N_CRITIC):
        real, y = batches.sample(cfg.batch_size)
        d = gan.d_step(real, y, keep_fake=reuse_fake)
    errG = gan.g_step(y, d.fake, real) if g_update else None
    if (step + 1) % opt.log_every == 0 or step + 1 == opt.steps:
        loss_g_text = "-" if errG is None else f"{{errG.item():.6f}}"
        print(f"[{{step + 1}}/{{opt.steps}}] Loss_D: {{d.loss.item():.6f}} Loss_G: {{loss_g_text}} "
              f"D(x): {{{shown[0]}:.6f}} D(G(z)): {{{shown[1]}:.6f}}", flush=True)

# ---------------------------------------------------------------- samples from the fixed noise
samples = gan.generate(gan.fixed_z, gan.fixed_y)  # EMA weights when on, BatchNorm on its running statistics
{final}
print(f"saved {{opt.out}}")''')
    return "\n".join(L) + "\n"


def export_script(run_dir: str | Path) -> str:
    """The script for a run folder: its config, and its step count as the default length."""
    run_dir = Path(run_dir)
    data = rf.read_json(run_dir / "config.json", run_dir)
    if data is None:
        raise ExportError(f"{run_dir}: not a run folder (no readable config.json)")
    try:
        cfg = RunConfig.from_dict(data).validate()
    except ConfigError as e:
        raise ExportError(f"run {run_dir.name} has a config this version cannot read ({e})") from None
    status = rf.read_json(run_dir / "status.json", run_dir) or {}
    steps = cfg.steps or int(status.get("step") or 0) or 1000
    return script_for(cfg, steps, title=f"Run {run_dir.name}")


def script_name(run_id: str) -> str:
    return f"{rf.slug(run_id)}.py"



