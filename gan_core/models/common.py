"""The two wrappers every architecture shares: a uniform G(z, y) / D(x, y) interface with optional
class conditioning, plus weight init and spectral norm. Architectures only build plain nn.Sequential bodies."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fold_conv import fold_conv2d


class Generator(nn.Module):
    """G(z, y) → samples. When conditional, the one-hot label is appended to z (Mirza & Osindero 2014)."""

    def __init__(self, body: nn.Module, z_dim: int, num_classes: int = 0):
        super().__init__()
        self.body, self.z_dim, self.num_classes = body, z_dim, num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:  # y: class indices, or (N, classes) soft labels for the latent explorer's class walk
            onehot = y.to(z.dtype) if y.is_floating_point() else F.one_hot(y, self.num_classes).to(z.dtype)
            z = torch.cat([z, onehot], 1)
        return self.body(z)


class Discriminator(nn.Module):
    """D(x, y) → one logit per sample. When conditional, the one-hot label is appended to the flattened
    input (`flat`, MLPs) or as constant feature maps (`channels`, conv nets)."""

    def __init__(self, body: nn.Module, num_classes: int = 0, cond_mode: str = "channels"):
        super().__init__()
        self.body, self.num_classes, self.cond_mode = body, num_classes, cond_mode

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if self.cond_mode != "flat" and x.shape[0] > self.num_classes and self.label_planes_split():
                return self.split_first_conv(x, y).reshape(-1)
            onehot = F.one_hot(y, self.num_classes).to(x.dtype)
            if self.cond_mode == "flat":
                x = torch.cat([x.flatten(1), onehot], 1)
            else:
                x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], 1)
        return self.body(x).reshape(-1)

    def label_planes_split(self) -> bool:
        """Whether the body starts with a plain convolution that split_first_conv can take apart."""
        first = self.body[0] if isinstance(self.body, nn.Sequential) and len(self.body) else None
        return isinstance(first, nn.Conv2d) and first.groups == 1 and first.padding_mode == "zeros"

    def split_first_conv(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The body on [x; one-hot label planes], computed without the planes. A convolution is linear in its input
        channels, so conv([x; planes]) = conv(x, W_x) + conv(planes, W_label), and the second term has only one value
        per class (padding included): class c's planes are zeros but one plane of ones, so it is conv(ones, W_label[:,
        c]), for all classes at once one 1-channel convolution, picked by label. Same parameters and outputs as the
        concatenation, at ~1/11 of its first-layer work for MNIST (most of D's time). Worth it when the batch holds
        more samples than there are classes."""
        first = self.body[0]
        weight, channels = first.weight, x.shape[1]  # read once: a spectral-norm weight is computed on each read
        out, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
        label_kernels = weight[:, channels:].transpose(0, 1).reshape(self.num_classes * out, 1, kh, kw)
        ones = torch.ones(1, 1, x.shape[2], x.shape[3], dtype=x.dtype, device=x.device)
        per_class = F.conv2d(ones, label_kernels, None, first.stride, first.padding, first.dilation)
        per_class = per_class.reshape(self.num_classes, out, *per_class.shape[2:])
        h = fold_conv2d(x, weight[:, :channels], first.bias, first.stride, first.padding, first.dilation)
        if h.is_contiguous(memory_format=torch.channels_last):  # the same layout as h: a plain add, not a strided one
            per_class = per_class.contiguous(memory_format=torch.channels_last)
        h = h.add_(per_class[y])  # in place: a convolution's backward does not need its output
        for layer in self.body[1:]:
            h = layer(h)
        return h


class Dropout(nn.Module):
    """nn.Dropout drawing its mask from `generator` (set by the trainer to its own seeded stream), so a run with
    dropout is reproducible for its seed even while other runs train in other threads; no generator = global RNG."""

    def __init__(self, p: float):
        super().__init__()
        self.p, self.generator = p, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_generator(module: nn.Module, generator: torch.Generator) -> None:
    """Make every random layer of `module` draw from `generator`."""
    for m in module.modules():
        if isinstance(m, Dropout):
            m.generator = generator


def init_weights(module: nn.Module, scheme: str) -> None:
    """`dcgan`: N(0, 0.02) weights, BN N(1, 0.02) (Radford et al., tutorial 004); `xavier`: Xavier-uniform (tutorial 001)."""
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and scheme == "dcgan":
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def add_spectral_norm(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            add_spectral_norm(child)


def norm2d(kind: str, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> nn.Module:
    """D's normalisation choice: BatchNorm (DCGAN), layer norm (GroupNorm with 1 group; WGAN-GP) or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=momentum, eps=eps)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()
