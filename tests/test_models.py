"""Every architecture × channels × conditioning builds G and D with the shapes the trainer relies on."""
import pytest
import torch
import torch.nn as nn

from gan_core.models import ARCHS, build_models, image_size_for
from gan_core.presets import build_config

IMAGE_ARCHS = [name for name, info in ARCHS.items() if info.kind == "image"]
NATIVE = {"mlp": 28, "dcgan28": 28, "dcgan32": 32, "dcgan64": 64, "upconv": 28}


def test_every_image_arch_has_an_expected_size():
    assert set(IMAGE_ARCHS) == set(NATIVE), "a new architecture needs its size listed here"


@pytest.mark.parametrize("conditional", [False, True], ids=["plain", "cond"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_image_shapes(arch, channels, conditional):
    cfg = build_config(dataset="mnist-embedded", arch=arch, channels=channels, conditional=conditional, z_dim=16,
                       g_features=8, d_features=8, g_hidden=[32], d_hidden=[32], steps=1).validate()
    G, D = build_models(cfg, channels, 10)
    n, size = 3, NATIVE[arch]
    assert image_size_for(cfg) == size
    z = torch.randn(n, cfg.z_dim)
    y = torch.tensor([0, 4, 9]) if conditional else None
    x = G(z, y)
    assert x.shape == (n, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output, the data range
    assert D(x, y).shape == (n,)
    G.eval(), D.eval()  # sampling and display use eval mode (BatchNorm running stats)
    with torch.no_grad():
        assert G(z, y).shape == (n, channels, size, size) and D(x, y).shape == (n,)


def test_conditional_generator_depends_on_the_label():
    cfg = build_config(arch="mlp", conditional=True, g_hidden=[32], d_hidden=[32], steps=1).validate()
    G, D = build_models(cfg, 1, 10)
    z = torch.randn(1, cfg.z_dim).expand(2, -1)
    x = G(z, torch.tensor([1, 7]))
    assert not torch.equal(x[0], x[1])
    assert not torch.equal(D(x[:1], torch.tensor([1])), D(x[:1], torch.tensor([7])))


def test_mlp_image_size_follows_the_config():
    cfg = build_config(arch="mlp", image_size=16, g_hidden=[32], d_hidden=[32], steps=1).validate()
    G, D = build_models(cfg, 1, 10)
    x = G(torch.randn(2, cfg.z_dim), torch.tensor([0, 1]))
    assert x.shape == (2, 1, 16, 16) and D(x, torch.tensor([0, 1])).shape == (2,)


@pytest.mark.parametrize("hidden", [[8], [16, 16, 16]])
def test_mlp2d_shapes(hidden):
    cfg = build_config(dataset="ring-8", g_hidden=hidden, d_hidden=hidden, z_dim=3, steps=1).validate()
    G, D = build_models(cfg, 0, 0)
    x = G(torch.randn(5, 3))
    assert x.shape == (5, 2) and D(x).shape == (5,)
    assert sum(isinstance(m, nn.Linear) for m in G.modules()) == len(hidden) + 1


def test_classic_mlp_is_seed_002():
    G, D = build_models(build_config("classic-mlp"), 1, 10)
    g_lin = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    d_lin = [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, nn.Linear)]
    assert g_lin == [(100, 256), (256, 256), (256, 784)]
    assert d_lin == [(784, 256), (256, 256), (256, 1)]
    assert isinstance(list(G.body)[-2], nn.Tanh)
    assert {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}


def test_classic_dcgan_is_seed_000():
    G, D = build_models(build_config("classic-dcgan"), 1, 10)
    g_conv = [(m.in_channels, m.out_channels) for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert g_conv == [(100, 256), (256, 128), (128, 64), (64, 1)]
    assert G(torch.randn(2, 100)).shape == (2, 1, 32, 32)


@pytest.mark.parametrize("init", ["dcgan", "xavier", "default"])
def test_init_is_seeded_and_spectral_norm_applies(init):
    cfg = build_config(arch="dcgan32", init=init, spectral_norm=True, g_features=8, d_features=8, steps=1).validate()
    G1, D1 = build_models(cfg, 1, 10)
    G2, _ = build_models(cfg, 1, 10)
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values()))
    assert any("parametrizations" in name for name, _ in D1.named_parameters())
    G3, _ = build_models(cfg.replace(seed=1), 1, 10)
    assert not all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G3.state_dict().values()))


def test_dcgan_init_is_normal_002():
    G, _ = build_models(build_config(arch="dcgan64", init="dcgan", steps=1), 1, 10)
    w = torch.cat([m.weight.detach().flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002


def concatenated_labels_d(D, x, y):
    """What a conditional conv D computes by definition: its body on the image with ten one-hot label planes."""
    planes = torch.nn.functional.one_hot(y, D.num_classes).to(x.dtype)[:, :, None, None]
    return D.body(torch.cat([x, planes.expand(-1, -1, x.shape[2], x.shape[3])], 1)).reshape(-1)


@pytest.mark.parametrize("spectral_norm", [False, True], ids=["plain", "sn"])
@pytest.mark.parametrize("arch", ["dcgan28", "dcgan32", "dcgan64", "upconv"])
def test_conditional_d_scores_and_gradients_are_those_of_the_concatenated_labels(arch, spectral_norm):
    cfg = build_config(dataset="mnist-embedded", arch=arch, channels=3, conditional=True, g_features=8, d_features=8,
                       spectral_norm=spectral_norm, steps=1).validate()
    _, D = build_models(cfg, 3, 10)
    D = D.to(memory_format=torch.channels_last)  # as the trainer runs it on a CPU
    if spectral_norm:
        D.eval()  # in training mode every weight read advances the power iteration: two calls would differ
    size = NATIVE[arch]
    x = torch.randn(16, 3, size, size, requires_grad=True)
    y = torch.arange(16) % 10
    torch.manual_seed(0)  # upconv's dropout: the same masks for both
    got = D(x, y)
    grads = torch.autograd.grad((got * torch.linspace(-1, 1, 16)).sum(), [x, *D.parameters()])
    torch.manual_seed(0)
    want = concatenated_labels_d(D, x, y)
    want_grads = torch.autograd.grad((want * torch.linspace(-1, 1, 16)).sum(), [x, *D.parameters()])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for g, w in zip(grads, want_grads):  # sums over the batch in another order: float error scales with the gradient
        torch.testing.assert_close(g, w, rtol=1e-4, atol=5e-5 * max(1.0, w.abs().max().item()))


def test_conditional_d_does_not_convolve_the_label_planes_of_every_sample():
    from torch.utils.flop_counter import FlopCounterMode
    cfg = build_config("fast-mnist").validate()
    _, D = build_models(cfg, 1, 10)
    x, y = torch.randn(64, 1, 28, 28), torch.arange(64) % 10

    def flops(forward) -> int:
        with FlopCounterMode(display=False) as counter:
            forward(x, y)
        return counter.get_total_flops()
    assert flops(D) < 0.6 * flops(lambda x, y: concatenated_labels_d(D, x, y))
