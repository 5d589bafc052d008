"""Restoration with a GAN prior: search G's latent space (and its class) for the sample that agrees with what is
known, with no extra training.

Inpainting (Yeh et al. 2017): minimise the error on the known pixels, then keep those pixels and take the holes
from G. Super-resolution (PULSE, Menon et al. 2020): minimise the error between the down-sampled sample and the
low-res input, with z kept on the sphere where Gaussian noise lives.

All images and all restarts are one batch: a screen of random (class, z) candidates without gradients, then Adam
on the best few per image, then Adam on G's hidden features at the winner (intermediate-layer optimisation: G's
nearest digit, bent to the input). 300 digits take well under a minute on a 2-core CPU with the fast default's G.
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F

from ..engine.memory import release_freed_memory
from .damage import downsample, keep_known, match_low_res


class SearchQueue:
    """Prior searches take one slot each, `slots` at a time for the whole process, the rest waiting in arrival order:
    each search holds a few hundred MB and both cores for seconds, so five viewers pressing Restore at once ran five
    (+2 GB, every one slower) and could take a teacher's run down. A thread that holds a slot may enter again (the
    page takes its turn around the whole restore, the search takes it too)."""

    def __init__(self, slots: int = 1):
        self.slots, self.active, self.waiting = slots, set(), []
        self.cond = threading.Condition()

    def ahead_of_new(self) -> int:
        """Searches running or queued now: what a search starting now would wait behind."""
        with self.cond:
            return len(self.active) + len(self.waiting)

    @contextmanager
    def turn(self, on_wait: Callable[[int], None] | None = None):
        """Hold a slot for the `with` body; while queued, `on_wait(searches ahead)` each time that number changes."""
        me = threading.get_ident()
        if me in self.active:
            yield
            return
        with self.cond:
            self.waiting.append(me)
            told = None
            while len(self.active) >= self.slots or self.waiting[0] != me:
                ahead = len(self.active) + self.waiting.index(me)
                if on_wait is not None and ahead != told:
                    on_wait(ahead)
                    told = ahead
                self.cond.wait()
            self.waiting.remove(me)
            self.active.add(me)
        try:
            yield
        finally:
            release_freed_memory()  # before the next search starts: the server returns to its size between searches
            with self.cond:
                self.active.discard(me)
                self.cond.notify_all()


SEARCHES = SearchQueue()  # one per server process: every session's prior searches share it


@dataclass
class SearchSettings:
    restarts: int = 3  # candidates per image that Adam refines (the best screened ones)
    screen: int = 96  # random z per class (or in all, for an unconditional G) tried before Adam
    steps: int = 120  # Adam iterations
    lr: float = 0.2
    batch: int = 512  # candidates per forward pass: bounds the memory (2,400 took +150 MB) and runs faster on a CPU
    layer_steps: int = 200  # then Adam on G's hidden features at the winner (0 = z alone; see _refine_hidden)
    layer_lr: float = 0.1
    layer_reg: float = 0.01  # keeps those features near G's own
    frames: int = 12  # snapshots of the search kept for the page and the GIF
    frame_images: int = 16  # images shown in each snapshot
    seed: int = 0

    @property
    def total_steps(self) -> int:
        return self.steps + self.layer_steps


@dataclass
class SearchResult:
    images: torch.Tensor  # (N, C, H, W) restored, known part kept
    raw: torch.Tensor  # G's best sample itself, before the known part is put back
    labels: torch.Tensor | None  # the class the search settled on (conditional G)
    losses: list[float] = field(default_factory=list)  # mean best loss per Adam iteration
    frames: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (iteration, first images' samples)


def _project(z: torch.Tensor, noise: str) -> torch.Tensor:
    """Back onto where G's noise lives: the √d sphere for Gaussian z (PULSE), the cube for uniform z."""
    if noise == "uniform":
        return z.clamp(-1, 1)
    return z * (math.sqrt(z.shape[1]) / z.norm(dim=1, keepdim=True).clamp_min(1e-6))


def _fit_loss(task: str, sample: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, factor: int,
              mode: str) -> torch.Tensor:
    """Per-candidate mean squared disagreement with what is known."""
    if task == "inpaint":
        err = (sample - target) ** 2 * mask
        return err.flatten(1).sum(1) / (mask.expand_as(sample).flatten(1).sum(1).clamp_min(1.0))
    return ((downsample(sample, factor, mode) - target) ** 2).flatten(1).mean(1)


def split_generator(G):
    """(head, tail) of G's body at the input of its second-to-last weight layer (dcgan28: the 7×7 features), or
    None when G is too shallow. head takes G's input (z with the one-hot label appended)."""
    body = getattr(G, "body", None)
    if not isinstance(body, torch.nn.Sequential):
        return None
    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    weights = [i for i, m in enumerate(body) if isinstance(m, layers)]
    if len(weights) < 3:
        return None
    return body[:weights[-2]], body[weights[-2]:]


def _in_chunks(fn, *tensors, batch: int):
    return torch.cat([fn(*(t[i:i + batch] if t is not None else None for t in tensors))
                      for i in range(0, len(tensors[0]), batch)])


def _screen_losses(loss_of, z0, y0, target, mask, per_image: int, batch: int) -> torch.Tensor:
    """Every candidate's loss, `batch` at a time, written into one tensor made up front. Each chunk picks its
    candidates' images by index: copying the target and mask once per candidate held 190 MB for 32 images (960
    candidates each). And no small result is kept between chunks: glibc then could not reuse the chunks' freed
    activations, and the screen of 64 images grew the server by 330 MB."""
    losses = torch.empty(len(z0), device=z0.device)
    for i in range(0, len(z0), batch):
        image = torch.arange(i, min(i + batch, len(z0)), device=z0.device) // per_image
        losses[i:i + batch] = loss_of(z0[i:i + batch], None if y0 is None else y0[i:i + batch], target[image],
                                      None if mask is None else mask[image])
    return losses


def _refine_hidden(parts, g_input: torch.Tensor, fit, s: SearchSettings, record) -> torch.Tensor:
    """Stage 2 (intermediate-layer optimisation, as ILO, Daras et al. 2021, and mGANprior): the z search ends on
    the nearest image G can draw; freeing G's hidden features at that point lets the strokes follow the input,
    while the layers after them still draw them as G does. A penalty keeps the features near G's own."""
    head, tail = parts
    with torch.no_grad():
        h0 = head(g_input)
    size = h0.pow(2).flatten(1).mean(1).sqrt().clamp_min(1e-6).view(-1, *[1] * (h0.dim() - 1))
    offset = torch.zeros_like(h0, requires_grad=True)  # in units of the features' own size: one lr fits every G
    opt = torch.optim.Adam([offset], lr=s.layer_lr)
    for it in range(s.steps, s.total_steps):
        per_image = fit(tail(h0 + size * offset))
        (per_image + s.layer_reg * offset.pow(2).flatten(1).mean(1)).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        record(it, float(per_image.detach().mean()), lambda count: tail((h0 + size * offset)[:count]))
    with torch.no_grad():
        return tail(h0 + size * offset).float().clamp(-1, 1)


def prior_search(G, noise: str, task: str, target: torch.Tensor, mask: torch.Tensor | None = None, factor: int = 4,
                 mode: str = "area", settings: SearchSettings | None = None,
                 on_progress: Callable[[int, int, float], None] | None = None) -> SearchResult:
    """Restore `target` ((N, C, H, W) damaged images, or low-res ones for super-resolution) with generator G.
    `on_progress(done, total, loss)` after each step; total is the steps this G gets (a shallow G skips stage 2)."""
    with SEARCHES.turn():
        return _prior_search(G, noise, task, target, mask, factor, mode, settings or SearchSettings(), on_progress)


def _prior_search(G, noise, task, target, mask, factor, mode, s: SearchSettings, on_progress) -> SearchResult:
    parts = split_generator(G) if s.layer_steps else None
    if parts is None:  # too shallow a G for the second stage: frames and progress span the z search alone
        s = replace(s, layer_steps=0)
    n, z_dim = len(target), G.z_dim
    classes = G.num_classes or 0
    gen = torch.Generator().manual_seed(s.seed)
    G.eval().requires_grad_(False)
    device = next(G.parameters()).device
    target = target.to(device)
    mask = None if mask is None else mask.to(device)

    def loss_of(z, y, tgt, msk):
        return _fit_loss(task, G(z, y), tgt, msk, factor, mode)

    # 1. screen: `screen` random z per class per image, no gradients; keep the best `restarts` (class, z) per image
    per_image = s.screen * max(classes, 1)
    z0 = torch.randn(n * per_image, z_dim, generator=gen).to(device)
    if noise == "uniform":
        z0 = torch.rand(n * per_image, z_dim, generator=gen).mul_(2).sub_(1).to(device)
    y0 = (torch.arange(per_image, device=device) // s.screen).repeat(n) if classes else None
    with torch.no_grad():
        screened = _screen_losses(loss_of, z0, y0, target, mask, per_image, s.batch).view(n, per_image)
    k = min(s.restarts, per_image)
    if classes:  # best z of each class, then the best k classes: restarts explore different digits
        best_in_class = screened.view(n, classes, s.screen).min(2)
        top_classes = best_in_class.values.topk(k, dim=1, largest=False).indices
        pick = top_classes * s.screen + best_in_class.indices.gather(1, top_classes)
    else:
        pick = screened.topk(k, dim=1, largest=False).indices
    flat = (pick + torch.arange(n, device=device)[:, None] * per_image).reshape(-1)
    z = z0[flat].clone().requires_grad_(True)
    y = y0[flat] if classes else None
    tgt = target.repeat_interleave(k, 0)
    msk = None if mask is None else mask.repeat_interleave(k, 0)

    # 2. refine: Adam on all n·k candidates at once
    opt = torch.optim.Adam([z], lr=s.lr)
    result = SearchResult(target, target, None)
    last = s.total_steps - 1
    frame_at = {round(i * last / max(s.frames - 1, 1)) for i in range(s.frames)} if s.frames else set()
    shown = min(s.frame_images, n)

    def record(it: int, loss: float, draw) -> None:
        """The search's loss, progress and frames (draw(count) → the first images' samples), for both stages."""
        result.losses.append(loss)
        if on_progress:
            on_progress(it + 1, s.total_steps, loss)
        if it in frame_at:
            with torch.no_grad():
                result.frames.append((it + 1, draw(shown).float().cpu()))

    for it in range(s.steps):
        per_candidate = loss_of(z, y, tgt, msk)
        per_candidate.sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            z.copy_(_project(z, noise))
        best = per_candidate.detach().view(n, k)

        def draw(count: int, best=best) -> torch.Tensor:  # each of the first images' best candidate
            idx = best[:count].argmin(1) + torch.arange(count, device=device) * k
            return G(z[idx], None if y is None else y[idx])
        record(it, float(best.min(1).values.mean()), draw)

    # 3. the best candidate per image
    with torch.no_grad():
        final = _in_chunks(loss_of, z.detach(), y, tgt, msk, batch=s.batch).view(n, k)
        winner = final.argmin(1) + torch.arange(n, device=device) * k
        if parts is None:
            raw = G(z.detach()[winner], None if y is None else y[winner]).float().clamp(-1, 1)
    if parts:
        g_input = z.detach()[winner]
        if classes:  # what G's body sees: z with the one-hot class (models.common.Generator)
            g_input = torch.cat([g_input, F.one_hot(y[winner], classes).to(g_input.dtype)], 1)
        raw = _refine_hidden(parts, g_input, lambda sample: _fit_loss(task, sample, target, mask, factor, mode), s,
                             record)

    # 4. known pixels (or block means) put back
    if task == "inpaint":
        images = keep_known(raw, target, mask)
    elif mode == "area":
        images = match_low_res(raw, target, factor)
    else:
        images = raw
    result.images, result.raw = images.cpu(), raw.cpu()
    result.labels = None if y is None else y[winner].cpu()
    return result
