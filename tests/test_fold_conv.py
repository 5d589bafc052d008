"""The fold convolutions train exactly what torch's own layers train: same outputs, same gradients (double
backward included, which R1 and WGAN-GP need), same state_dict, and only where they apply."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from gan_core.models import fold_conv
from gan_core.models.fold_conv import FoldConv2d, FoldConvTranspose2d, use_fold_kernels


def _pair(layer: nn.Module, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    ref = layer.double()
    fast = copy.deepcopy(ref)
    assert use_fold_kernels(fast) == 1
    return ref, fast


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(1, 8, 5), (4, 1, 28, 28)),  # dcgan28's D
    (nn.Conv2d(1, 6, 4, 2, 1), (3, 1, 32, 32)),  # dcgan32's D: stride 2, padding 1
    (nn.Conv2d(1, 5, 3, 2, 0, bias=False), (2, 1, 9, 9)),  # a size the stride does not divide: the last row unused
    (nn.ConvTranspose2d(16, 1, 4, 2, 1), (4, 16, 14, 14)),  # dcgan28's G
    (nn.ConvTranspose2d(7, 1, 5, 1, 0, bias=False), (2, 7, 6, 6)),
])
def test_fold_layers_match_torch_layers(layer, shape):
    ref, fast = _pair(layer)
    x = torch.randn(*shape, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x_ref, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_fast = ref(x_ref), fast(x_fast)
    torch.testing.assert_close(y_fast, y_ref)
    grad = torch.randn_like(y_ref)
    y_ref.backward(grad)
    y_fast.backward(grad)
    torch.testing.assert_close(x_fast.grad, x_ref.grad)
    for p_fast, p_ref in zip(fast.parameters(), ref.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad)
    assert fast.state_dict().keys() == ref.state_dict().keys()


@pytest.mark.parametrize("layer, shape", [(nn.Conv2d(1, 3, 3, 2, 1), (2, 1, 7, 7)), (nn.ConvTranspose2d(3, 1, 4, 2, 1), (2, 3, 4, 4))])
def test_fold_layers_differentiate_twice(layer, shape):
    _, fast = _pair(layer)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    params = tuple(fast.parameters())

    def f(x, *ps):
        return torch.func.functional_call(fast, dict(zip([n for n, _ in fast.named_parameters()], ps)), (x,))
    assert torch.autograd.gradgradcheck(f, (x, *params))


def test_input_gradient_only_when_asked():
    """D frozen in G's update: only the input gradient is computed, and the weights get none."""
    _, fast = _pair(nn.Conv2d(1, 4, 3))
    fast.requires_grad_(False)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    fast(x).sum().backward()
    assert x.grad is not None and fast.weight.grad is None


def test_only_plain_one_channel_layers_switch():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),  # RGB input: measured slower by fold, stays
        nn.Conv2d(1, 8, 3, dilation=2),  # dilated: stays
        nn.utils.parametrizations.spectral_norm(nn.Conv2d(1, 8, 3)),  # wrapped: stays
        nn.ConvTranspose2d(8, 3, 4, 2, 1),  # into RGB: stays
        nn.ConvTranspose2d(8, 1, 4, 2, 1, output_padding=1),  # output padding: stays
        nn.Conv2d(1, 8, 3), nn.ConvTranspose2d(8, 1, 4, 2, 1),
    )
    assert use_fold_kernels(net) == 2
    assert [type(m).__name__ for m in net] == ["Conv2d", "Conv2d", "ParametrizedConv2d", "ConvTranspose2d",
                                              "ConvTranspose2d", "FoldConv2d", "FoldConvTranspose2d"]


def test_bf16_autocast_gives_bf16_activations_and_fp32_gradients():
    torch.manual_seed(0)
    g_last, d_first = FoldConvTranspose2d(16, 1, 4, 2, 1), nn.Conv2d(1, 8, 5)
    use_fold_kernels(d_first)
    z = torch.randn(4, 16, 14, 14)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d_first(g_last(z))
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in (*g_last.parameters(), *d_first.parameters()))


def test_split_label_planes_use_the_fold_input_gradient(monkeypatch):
    """The conditional D's first convolution (split from its label planes) goes through fold_conv2d."""
    from gan_core.models import common
    from gan_core.models.common import Discriminator
    calls = []
    monkeypatch.setattr(common, "fold_conv2d", lambda *a, **k: calls.append(a[0].shape) or fold_conv.fold_conv2d(*a, **k))
    D = Discriminator(nn.Sequential(nn.Conv2d(1 + 10, 4, 5), nn.Flatten(), nn.LazyLinear(1)), num_classes=10)
    D(torch.randn(16, 1, 28, 28), torch.randint(10, (16,)))
    assert calls == [torch.Size([16, 1, 28, 28])]
