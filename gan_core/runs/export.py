"""`export-script`: a run as one flat, readable PyTorch file (pytorch/examples' dcgan main.py style), no gan_core.

Why: users ask to take the model they built away as code. The script is assembled from the run's config: the
networks are written out layer by layer from the very modules the trainer builds, and the loss, data and init
helpers are gan_core's own source, so the exported file does the same maths (same seed → same losses on a CPU).
"""
from __future__ import annotations

import inspect
from pathlib import Path

import torch.nn as nn

from ..config import ConfigError, RunConfig
from ..data import ImageBatches, _resize, dataset_info, load_points, to_unit_range
from ..engine.gan import FIXED_NOISE_SEED_OFFSET
from ..engine.pictures import points_image
from ..errors import StudioError
from ..losses import LOSSES, gradient_penalty, r1_penalty
from ..models import build_models, image_size_for
from ..models.common import Discriminator, Dropout, Generator, add_spectral_norm, init_weights, use_generator
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
    """Code that puts the training set in `batches` (images: uint8 on the device; 2-D: a point sampler)."""
    if cfg.is_2d:
        points = load_points(cfg.dataset)
        if points.centres is None:
            raise ExportError(f"export-script supports the 2-D mixtures (ring-8, grid-25), not `{cfg.dataset}` yet")
        centres = ", ".join(f"[{x!r}, {y!r}]" for x, y in points.centres.tolist())
        return f'''# {cfg.dataset}: {dataset_info(cfg.dataset).description}
CENTRES = torch.tensor([{centres}])
SIGMA, EXTENT = {points.sigma!r}, {points.extent!r}


def sample_points(n, g):
    pick = torch.randint(len(CENTRES), (n,), generator=g, device=g.device)
    return CENTRES.to(g.device)[pick] + SIGMA * torch.randn(n, 2, generator=g, device=g.device)


class PointBatches:
    """Fresh points every batch: the data is a distribution, not a finite set."""

    def sample(self, batch_size):
        return sample_points(batch_size, rng).to(device), None


batches = PointBatches()'''
    size, channels = image_size_for(cfg), cfg.channels or dataset_info(cfg.dataset).channels
    if cfg.dataset in IMAGE_FILES:
        folder, prefix = IMAGE_FILES[cfg.dataset]
        load = f'''def read_idx(folder, name):
    """One MNIST-format (IDX) file, gzipped or not, as a numpy array."""
    for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
        if os.path.exists(path):
            with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
                raw = f.read()
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * raw[3]).reshape(dims)
    raise SystemExit(f"{{name}} not found in {{folder}} (torchvision's layout: --data-root DIR holding {folder}/)")


folder = os.path.join(opt.data_root, "{folder}")
images = torch.from_numpy(read_idx(folder, "{prefix}-images-idx3-ubyte").copy()).unsqueeze(1)
labels = torch.from_numpy(read_idx(folder, "{prefix}-labels-idx1-ubyte").astype(np.int64))'''
    elif cfg.dataset == "cifar10":
        load = '''class ArraysOnly(Unpickler):
    """The official CIFAR-10 files are pickles: rebuild only the numpy arrays, lists and dicts they hold; any other
    object (a pickle can name any callable) is refused, so a planted file cannot run code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # bytes in protocol-2 pickles

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise UnpicklingError(f"{module}.{name} is not part of a CIFAR-10 batch")
        return super().find_class(module, name)


folder = os.path.join(opt.data_root, "cifar-10-batches-py")  # torchvision's CIFAR-10 layout
parts = []
for i in range(1, 6):
    with open(os.path.join(folder, f"data_batch_{i}"), "rb") as f:
        parts.append(ArraysOnly(f, encoding="latin1").load())
images = torch.from_numpy(np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32))
labels = torch.tensor(sum((p["labels"] for p in parts), []), dtype=torch.long)'''
    else:
        raise ExportError(f"export-script supports MNIST, Fashion-MNIST, CIFAR-10 and 2-D mixtures, not `{cfg.dataset}` yet")
    return f'''{load}
images = _resize(images, {size}, {channels}).to(device)  # resized once at load, never in the loop
data = Data(images, labels.to(device) if CONDITIONAL else None)
batches = ImageBatches(data, rng)'''


def _loss_source(cfg: RunConfig) -> tuple[str, str, str]:
    """(source of the loss functions, D loss name, G loss name)."""
    loss = LOSSES[cfg.loss]
    parts = [loss.d, loss.g]
    text = _src(*parts)
    if "_bce(" in text:
        parts.insert(0, LOSSES["bce"].d.__globals__["_bce"])
    if loss.gradient_penalty:
        parts.append(gradient_penalty)
    if cfg.r1_gamma:
        parts.append(r1_penalty)
    if loss.relativistic:
        parts = [p for p in parts if p is not loss.g] + [loss.g]
    return _src(*parts), loss.d.__name__, loss.g.__name__


def script_for(cfg: RunConfig, steps: int, title: str = "") -> str:
    """The whole exported file for a validated config; `steps` is the default of --steps."""
    cfg = cfg.validate()
    if cfg.task != "generate":
        raise ExportError(f"export-script writes image generators; this run restores images (task `{cfg.task}`), "
                          f"which has no plain-script form yet")
    loss = LOSSES[cfg.loss]
    G, D = build_models(cfg.replace(spectral_norm=False), 0 if cfg.is_2d else (cfg.channels or dataset_info(cfg.dataset).channels),
                        dataset_info(cfg.dataset).num_classes)
    has_bn_in_d = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    has_conv = any(isinstance(m, nn.Conv2d) for m in D.modules())
    has_dropout = any(isinstance(m, Dropout) for m in D.modules())
    loss_src, loss_d, loss_g = _loss_source(cfg)
    probability = loss.scores == "probability"
    reuse_always = cfg.n_critic == 1 and cfg.g_every == 1
    helpers = [Generator, Discriminator]
    if has_dropout:
        helpers += [Dropout, use_generator]
    helpers.append(init_weights)
    if cfg.spectral_norm:
        helpers.append(add_spectral_norm)
    if not cfg.is_2d:
        helpers += [to_unit_range, ImageBatches, _resize]
    else:
        helpers.append(points_image)
    noise_expr = ("torch.rand(n, Z_DIM, generator=generator, device=device).mul_(2).sub_(1)" if cfg.noise == "uniform"
                  else "torch.randn(n, Z_DIM, generator=generator, device=device)")
    optim = (f"torch.optim.SGD(net.parameters(), lr=lr, momentum={cfg.beta1!r})" if cfg.optimizer == "sgd" else
             f"torch.optim.Adam(net.parameters(), lr=lr, betas=({cfg.beta1!r}, {cfg.beta2!r}), **fast)")
    usage = (f"python {{script}} --data-root DIR --steps N   (DIR in torchvision's layout: "
             f"{IMAGE_FILES.get(cfg.dataset, ('cifar-10-batches-py',))[0]}/)") if not cfg.is_2d else "python {script} --steps N"
    L = []  # the file, in reading order
    L.append(f'''"""{title or "A GAN"} — exported from GAN Studio as one plain PyTorch file (needs only torch and torchvision).

Networks `{cfg.arch}`, optimiser `{cfg.optimizer}`, data `{cfg.dataset}`{f", preset `{cfg.preset}`" if cfg.preset else ""}; loss `{cfg.loss}`:
{loss.description}
Same seed, same data → the same losses as the studio's run (on a CPU, fp32). Usage:
    {usage.format(script="my_gan.py")}
It prints the losses every --log-every iterations and saves the fixed-noise samples to --out at the end.
"""
from __future__ import annotations

import argparse
import copy
import gzip
import math
import os
from collections import namedtuple
from pickle import Unpickler, UnpicklingError

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.utils as vutils

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-root", default={cfg.data_root!r}, help="folder holding the dataset (torchvision's layout)")
parser.add_argument("--steps", type=int, default={steps}, help="training iterations")
parser.add_argument("--seed", type=int, default={cfg.seed}, help="same seed, same run")
parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
parser.add_argument("--log-every", type=int, default={cfg.log_every}, help="print the losses every k iterations")
parser.add_argument("--out", default="samples.png", help="where the final sample grid goes")
opt = parser.parse_args()
device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if opt.device == "auto" else opt.device)

# The run's settings (its config.json)
Z_DIM = {cfg.z_dim}
BATCH_SIZE = {cfg.batch_size}
LR_D, LR_G = {cfg.lr_d!r}, {cfg.lr_g!r}
N_CRITIC, G_EVERY = {cfg.n_critic}, {cfg.g_every}
REAL_TARGET = {1.0 - cfg.label_smoothing!r}  # 1 - label smoothing
CONDITIONAL = {cfg.conditional}
NUM_CLASSES = {G.num_classes}
GRID_SIZE = {cfg.grid_size}''')
    extras = [("INSTANCE_NOISE", cfg.instance_noise), ("R1_GAMMA", cfg.r1_gamma), ("GRAD_CLIP", cfg.grad_clip),
              ("EMA", cfg.ema)]
    extras += [("GP_LAMBDA", cfg.gp_lambda)] if loss.gradient_penalty else []
    extras += [("CLIP_VALUE", cfg.clip_value)] if loss.clip_weights else []
    L += [f"{name} = {value!r}" for name, value in extras if value]
    L.append(f'''

# ---------------------------------------------------------------- building blocks (GAN Studio's own code)
Data = namedtuple("Data", "images labels")


def noise(n, generator, device):
    return {noise_expr}


{_src(*helpers)}


# ---------------------------------------------------------------- the loss: {cfg.loss}
{loss_src}


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
    L.append(f'''netG = Generator(g_body, Z_DIM, NUM_CLASSES).to(device)
netD = Discriminator(d_body, NUM_CLASSES, {D.cond_mode!r}).to(device)''')
    if has_dropout:
        L.append("use_generator(netD, rng)  # dropout masks from the seeded stream too")
    if has_conv:
        L.append('''if device.type == "cpu":  # oneDNN's own memory layout: no reorder around each conv
    netG.to(memory_format=torch.channels_last)
    netD.to(memory_format=torch.channels_last)''')
    if cfg.ema:
        L.append("netG_ema = copy.deepcopy(netG).requires_grad_(False)  # moving average of G's weights, for samples")
    L.append(f'''print(netG)
print(netD)

fast = {{"fused": True}} if device.type in ("cpu", "cuda") else {{"foreach": True}}  # one kernel for all tensors


def optimizer(net, lr):
    return {optim}


optimizerD, optimizerG = optimizer(netD, LR_D), optimizer(netG, LR_G)
fixed_noise = noise(GRID_SIZE, torch.Generator().manual_seed(opt.seed + {FIXED_NOISE_SEED_OFFSET}), "cpu").to(device)
fixed_labels = (torch.arange(GRID_SIZE) % NUM_CLASSES).to(device) if NUM_CLASSES else None''')
    if cfg.instance_noise:
        L.append('''

def add_instance_noise(x, step):
    """Gaussian noise on D's inputs, annealed linearly to 0 over the run."""
    sigma = INSTANCE_NOISE * max(0.0, 1.0 - step / opt.steps)
    return x + sigma * torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype) if sigma > 0 else x''')
    L.append(_loop_source(cfg, loss, loss_d, loss_g, has_bn_in_d, probability, reuse_always))
    return "\n".join(L) + "\n"


def _loop_source(cfg, loss, loss_d, loss_g, has_bn_in_d, probability, reuse_always) -> str:
    """The training loop, written for this config only (no branches for options the run does not use)."""
    noisy = "add_instance_noise({}, step)" if cfg.instance_noise else "{}"
    if reuse_always:
        fake = "fake = netG(z, y)  # one G forward serves both updates, as in pytorch/examples' dcgan"
    else:
        fake = """if reuse_fake:  # one G forward serves both updates, as in pytorch/examples' dcgan
            fake = netG(z, y)
        else:
            with torch.no_grad():
                fake = netG(z, y)"""
    if has_bn_in_d:
        score = """d_real = netD(real_in, y).float()  # D has BatchNorm: real and fake in separate batches
        d_fake = netD(fake_in, y).float()"""
    else:
        score = """both = netD(torch.cat([real_in, fake_in]), None if y is None else torch.cat([y, y]))  # one call, same maths
        d_real, d_fake = both.float().split(real_in.shape[0])"""
    d_extra = ""
    if loss.gradient_penalty:
        d_extra += "\n        errD = errD + GP_LAMBDA * gradient_penalty(netD, real, fake.detach(), y, rng)"
    r2 = loss.r2 and cfg.r1_gamma
    if cfg.r1_gamma:
        d_extra += "\n        errD = errD + 0.5 * R1_GAMMA * r1_penalty(d_real, real_in)"
    if r2:
        d_extra += "\n        errD = errD + 0.5 * R1_GAMMA * r1_penalty(d_fake, fake_in)  # R2: the same at the fakes"
    d_after = ""
    if cfg.grad_clip:
        d_after += "\n        torch.nn.utils.clip_grad_norm_(netD.parameters(), GRAD_CLIP, foreach=True)"
    d_step = "\n        optimizerD.step()"
    if loss.clip_weights:
        d_step += """
        with torch.no_grad():  # WGAN's weight clipping
            for p in netD.parameters():
                p.clamp_(-CLIP_VALUE, CLIP_VALUE)"""
    g = ["netD.requires_grad_(False)  # G's update needs D's input gradient only"]
    if not reuse_always:
        g += ["if not reuse_fake:", "    fake = netG(noise(BATCH_SIZE, rng, device), y)"]
    if loss.relativistic:
        g += [f"d_fake_g = netD({noisy.format('fake')}, y).float()", "with torch.no_grad():  # the real partners' scores",
              f"    d_real_g = netD({noisy.format('real')}, y).float()", f"errG = {loss_g}(d_fake_g, d_real_g)"]
    else:
        g += [f"errG = {loss_g}(netD({noisy.format('fake')}, y).float())"]
    g += ["optimizerG.zero_grad(set_to_none=True)", "errG.backward()"]
    if cfg.grad_clip:
        g.append("torch.nn.utils.clip_grad_norm_(netG.parameters(), GRAD_CLIP, foreach=True)")
    g += ["optimizerG.step()", "netD.requires_grad_(True)"]
    if cfg.ema:
        g += ["with torch.no_grad():  # EMA of G's weights",
              "    for pe, p in zip(netG_ema.parameters(), netG.parameters()):", "        pe.lerp_(p, 1.0 - EMA)",
              "    for be, b in zip(netG_ema.buffers(), netG.buffers()):", "        be.copy_(b)"]
    if cfg.g_every == 1:
        g_block = "\n    ".join(["errG = None"] + g)
    else:
        g_block = "errG = None\n    if g_step:" + "".join(f"\n        {line}" for line in g)
    shown = "torch.sigmoid({}).mean().item()" if probability else "{}.mean().item()"
    head = "" if reuse_always else "\n    g_step = step % G_EVERY == 0\n    reuse_fake = g_step and N_CRITIC == 1"
    if cfg.is_2d:
        final = """real_points = sample_points(GRID_SIZE, torch.Generator(device).manual_seed(0)).cpu().numpy()
from PIL import Image
Image.fromarray(points_image(real_points, samples.cpu().numpy(), EXTENT)).save(opt.out)"""
    else:
        nrow = 10 if cfg.conditional else "math.ceil(math.sqrt(GRID_SIZE))"
        final = f"vutils.save_image(samples.add(1).div(2), opt.out, nrow={nrow}, padding=2, pad_value=0.0)"
    r1 = ".detach().requires_grad_(True)  # R1 needs D's gradient at the real images" if cfg.r1_gamma else ""
    r2_text = ".detach().requires_grad_(True)  # R2 needs D's gradient at the fakes" if r2 else ""
    return f"""

# ---------------------------------------------------------------- training
for step in range(opt.steps):{head}
    ############################
    # (1) Update D: minimise {loss_d}
    ############################
    for _ in range(N_CRITIC):
        real, y = batches.sample(BATCH_SIZE)
        z = noise(BATCH_SIZE, rng, device)
        {fake}
        real_in = {noisy.format("real")}{r1}
        fake_in = {noisy.format("fake.detach()")}{r2_text}
        {score}
        errD = {loss_d}(d_real, d_fake, REAL_TARGET){d_extra}
        optimizerD.zero_grad(set_to_none=True)
        errD.backward(){d_after}{d_step}
    ############################
    # (2) Update G: minimise {loss_g}
    ############################
    {g_block}
    if (step + 1) % opt.log_every == 0 or step + 1 == opt.steps:
        loss_g_text = "-" if errG is None else f"{{errG.item():.6f}}"
        print(f"[{{step + 1}}/{{opt.steps}}] Loss_D: {{errD.item():.6f}} Loss_G: {{loss_g_text}} "
              f"D(x): {{{shown.format("d_real")}:.6f}} D(G(z)): {{{shown.format("d_fake")}:.6f}}", flush=True)

# ---------------------------------------------------------------- samples from the fixed noise
net = {"netG_ema" if cfg.ema else "netG"}
net.eval()  # BatchNorm uses its running statistics
with torch.no_grad():
    samples = net(fixed_noise, fixed_labels).float()
{final}
print(f"saved {{opt.out}}")"""


def export_run(run_dir: str | Path) -> str:
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



