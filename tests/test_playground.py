"""The 2-D playground engine and its figure layers, on hand-made nets and samples with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from gan_core.data import DatasetError, grid_25, ring_8
from gan_core.engine.point_metrics import mode_metrics
from gan_core.losses import LOSSES
from gan_core.models.common import Discriminator, Generator
from gan_core.playground.plane import d_surface, generator_manifold, gradient_field, grid_density, kl_js, true_density
from gan_core.playground.session import SCENARIOS, Playground, PlaygroundSettings, parse_points_csv, preset_settings

TINY = dict(g_layers=1, g_width=8, d_layers=1, d_width=8, batch_size=16)


def linear_D(w=(1.0, 0.0), b=0.0) -> Discriminator:
    """D(x) = w·x + b: a critic whose surface and gradients are known in closed form."""
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w]))
        lin.bias.fill_(b)
    return Discriminator(lin, 0, "flat")


def identity_G() -> Generator:
    return Generator(nn.Identity(), 2)


# ---------------------------------------------------------------------- D's surface
def test_surface_rows_are_y_and_columns_are_x_for_a_critic():
    surface = d_surface(linear_D((1.0, 0.0)), LOSSES["wgan"], extent=2.0, n=5)
    assert surface["kind"] == "critic"
    np.testing.assert_allclose(surface["x"], [-2, -1, 0, 1, 2])
    np.testing.assert_allclose(surface["z"], np.tile(surface["x"], (5, 1)), atol=1e-6)  # D(x) = x0 along every row
    surface = d_surface(linear_D((0.0, 1.0)), LOSSES["hinge"], extent=2.0, n=5)
    np.testing.assert_allclose(surface["z"], np.tile(surface["y"][:, None], (1, 5)), atol=1e-6)


def test_surface_is_a_probability_for_the_bce_family():
    for loss in ("bce", "minimax"):
        surface = d_surface(linear_D((1.0, 0.0)), LOSSES[loss], extent=3.0, n=7)
        assert surface["kind"] == "probability"
        np.testing.assert_allclose(surface["z"][0], 1 / (1 + np.exp(-surface["x"])), atol=1e-6)
        assert surface["z"].min() > 0 and surface["z"].max() < 1


# ---------------------------------------------------------------------- G's manifold
def test_manifold_of_the_identity_is_the_noise_grid():
    lines = generator_manifold(identity_G(), z_dim=2, noise="uniform", lines=3, points=4)
    assert len(lines) == 6  # 3 lines along each axis
    for line in lines:
        assert line.shape == (4, 2)
        assert np.allclose(line[:, 0], line[0, 0]) or np.allclose(line[:, 1], line[0, 1])  # straight, axis-aligned
    corners = np.concatenate(lines)
    assert corners.min() == pytest.approx(-1.0) and corners.max() == pytest.approx(1.0)  # U(-1, 1) spans ±1


def test_manifold_for_1d_noise_is_one_curve_through_G():
    lin = nn.Linear(1, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0], [2.0]]))
        lin.bias.zero_()
    (curve,) = generator_manifold(Generator(lin, 1), z_dim=1, noise="gaussian", points=9)
    t = np.linspace(-2.5, 2.5, 9)
    np.testing.assert_allclose(curve, np.stack([t, 2 * t], 1), atol=1e-5)  # the line y = 2x, gaussian span ±2.5


# ---------------------------------------------------------------------- G's gradient field
def test_gradient_field_points_up_the_critic():
    w = torch.tensor([0.6, -0.8])
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    field = gradient_field(identity_G(), linear_D(tuple(w.tolist())), LOSSES["wgan"], z)
    np.testing.assert_allclose(field["points"], z.numpy(), atol=1e-6)
    np.testing.assert_allclose(field["direction"], np.tile(w.numpy(), (10, 1)), atol=1e-5)  # −∇x(−D(x)) = w


def test_gradient_field_of_the_non_saturating_loss_fades_where_D_is_fooled():
    z = torch.tensor([[-3.0, 0.0], [0.0, 0.0], [3.0, 0.0]])
    field = gradient_field(identity_G(), linear_D((1.0, 0.0)), LOSSES["bce"], z)
    expected = 1 - torch.sigmoid(z[:, 0])  # −∇x(−log σ(x0)) = (1 − σ(x0))·e0
    np.testing.assert_allclose(field["direction"][:, 0], expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(field["direction"][:, 1], 0.0, atol=1e-6)
    assert field["direction"][0, 0] > field["direction"][2, 0]  # a rejected point is pushed harder


def test_gradient_field_leaves_D_untouched():
    D = linear_D((1.0, 1.0))
    gradient_field(identity_G(), D, LOSSES["lsgan"], torch.zeros(4, 2))
    assert all(p.grad is None and p.requires_grad for p in D.parameters())


# ---------------------------------------------------------------------- mode metrics
def test_samples_exactly_on_three_modes_cover_three_with_full_quality():
    ring = ring_8()
    centres = ring.centres.numpy()
    samples = np.repeat(centres[[0, 3, 5]], 100, axis=0)
    m = mode_metrics(samples, centres, ring.sigma)
    assert (m["modes"], m["n_modes"], m["hq_percent"]) == (3, 8, 100.0)
    assert m["mode_counts"] == [100, 0, 0, 100, 0, 100, 0, 0]


def test_high_quality_is_within_three_sigma_of_the_nearest_mode():
    sigma = 0.05
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[2.9 * sigma, 0.0], [0.0, 3.1 * sigma], [10.0, 0.0], [5.0, 5.0]])
    m = mode_metrics(samples, centres, sigma)
    assert m["hq_percent"] == 50.0 and m["modes"] == 2
    assert mode_metrics(samples, centres, sigma, min_count=2)["modes"] == 0


def test_pacgan_count_needs_twenty_samples_per_mode():
    grid = grid_25()
    centres = grid.centres.numpy()
    samples = np.concatenate([np.repeat(centres[:10], 20, 0), np.repeat(centres[10:15], 19, 0)])
    m = mode_metrics(samples, centres, grid.sigma)
    assert (m["modes"], m["modes_20"]) == (15, 10)


def test_a_real_ring_sample_covers_every_mode():
    ring = ring_8()
    real = ring.sample(2500, torch.Generator().manual_seed(0)).numpy()
    m = mode_metrics(real, ring.centres.numpy(), ring.sigma)
    assert m["modes"] == m["modes_20"] == 8
    assert m["hq_percent"] > 98  # 3σ in 2-D holds 98.9% of a Gaussian


def test_nan_samples_count_as_low_quality():
    centres = ring_8().centres.numpy()
    samples = np.concatenate([centres[:2], np.full((2, 2), np.nan)])
    m = mode_metrics(samples, centres, 0.02)
    assert m["hq_percent"] == 50.0 and m["modes"] == 2


# ---------------------------------------------------------------------- densities, KL and JS
def test_kl_and_js_of_a_distribution_with_itself_are_zero():
    x = ring_8().sample(2500, torch.Generator().manual_seed(1)).numpy()
    d = kl_js(x, x, extent=3.0)
    assert d["kl"] == pytest.approx(0.0, abs=1e-9) and d["js"] == pytest.approx(0.0, abs=1e-9)


def test_kl_grows_when_modes_are_missing_and_stays_finite():
    ring = ring_8()
    g = torch.Generator().manual_seed(2)
    real, other = ring.sample(2500, g).numpy(), ring.sample(2500, g).numpy()
    collapsed = np.repeat(ring.centres.numpy()[:1], 2500, 0)
    same, apart = kl_js(real, other, 3.0), kl_js(real, collapsed, 3.0)
    assert same["kl"] < 0.1 and same["js"] < 0.05
    assert math.isfinite(apart["kl"]) and apart["kl"] > 1.0
    assert apart["js"] <= math.log(2) + 1e-9 and apart["js"] > 0.4


def test_points_outside_the_grid_still_count():
    p = grid_density(np.array([[100.0, 0.0]] * 10), extent=1.0, bins=8)
    assert p.shape == (8, 8) and p.sum() == pytest.approx(1.0)
    assert p[:, 4:].sum() > 0.95 and p[:, :2].sum() < 1e-3  # clipped onto the right edge, not dropped


def test_true_density_peaks_on_the_modes():
    ring = ring_8()
    d = true_density(ring, ring.extent, bins=61)
    i, j = np.unravel_index(d["z"].argmax(), d["z"].shape)
    peak = np.array([d["x"][j], d["y"][i]])
    assert np.linalg.norm(ring.centres.numpy() - peak, axis=1).min() < 0.1
    assert d["z"][30, 30] < 1e-6 * d["z"].max()  # nothing at the centre of the ring


# ---------------------------------------------------------------------- the engine
def test_step_d_only_changes_d_and_step_g_only_changes_g():
    pg = Playground(PlaygroundSettings(**TINY))
    g0 = [p.clone() for p in pg.G.parameters()]
    d0 = [p.clone() for p in pg.D.parameters()]
    pg.step_d()
    assert all(torch.equal(a, b) for a, b in zip(g0, pg.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, pg.D.parameters()))
    d1 = [p.clone() for p in pg.D.parameters()]
    pg.step_g()
    assert all(torch.equal(a, b) for a, b in zip(d1, pg.D.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g0, pg.G.parameters()))
    assert (pg.d_steps, pg.g_steps, pg.iteration) == (1, 1, 0)


def test_an_iteration_is_n_critic_d_steps_then_one_g_step():
    pg = Playground(PlaygroundSettings(**TINY, n_critic=3))
    assert pg.run(4) == 4
    assert (pg.iteration, pg.d_steps, pg.g_steps) == (4, 12, 4)
    row = pg.history[-1]
    assert row["iteration"] == 4 and math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"])


def test_same_seed_same_run_and_reset_starts_over():
    a, b = Playground(PlaygroundSettings(**TINY)), Playground(PlaygroundSettings(**TINY))
    a.run(5)
    b.run(5)
    np.testing.assert_array_equal(a.generate(), b.generate())
    first = Playground(PlaygroundSettings(**TINY)).generate()
    a.reset()
    assert a.iteration == 0 and not a.history
    np.testing.assert_array_equal(a.generate(), first)


def test_live_settings_keep_the_nets_and_structural_ones_rebuild():
    pg = Playground(PlaygroundSettings(**TINY))
    pg.run(3)
    assert pg.apply(PlaygroundSettings(**{**TINY, "lr_g": 0.01, "loss": "hinge", "optimizer_d": "sgd"})) is False
    assert pg.iteration == 3 and pg.gan.opt_g.param_groups[0]["lr"] == 0.01
    assert isinstance(pg.gan.opt_d, torch.optim.SGD)
    assert pg.apply(PlaygroundSettings(**{**TINY, "g_width": 16})) is True
    assert pg.iteration == 0 and pg.G.body[0].out_features == 16


def test_every_loss_and_noise_runs_and_draws():
    for loss in LOSSES:
        for z_dim, noise in ((1, "uniform"), (2, "gaussian")):
            pg = Playground(PlaygroundSettings(**TINY, loss=loss, z_dim=z_dim, noise=noise, r1_gamma=1.0,
                                               label_smoothing=0.1))
            pg.run(2)
            layers = pg.figure_layers(arrows=8, heatmap_n=9)
            assert layers["surface"]["z"].shape == (9, 9) and np.isfinite(layers["surface"]["z"]).all()
            assert len(layers["manifold"]) == (1 if z_dim == 1 else 22)
            assert layers["gradients"]["direction"].shape == (8, 2)
            m = pg.metrics()
            assert 0 <= m["modes"] <= 8 and math.isfinite(m["kl"])


def test_wgan_clips_the_critic_weights():
    pg = Playground(PlaygroundSettings(**TINY, loss="wgan", clip_value=0.01, lr_d=0.5))
    pg.step_d()
    assert max(p.abs().max().item() for p in pg.D.parameters()) <= 0.01 + 1e-7


def test_walkthrough_has_six_stages_and_moves_the_fakes():
    pg = Playground(PlaygroundSettings(**TINY))
    stages = pg.walkthrough(show=10)
    assert [s.title[0] for s in stages] == list("123456")
    assert all(s.sentence for s in stages)
    assert stages[0].data["z"].shape == (10, 2)
    assert stages[4].data["direction"].shape == (10, 2)
    assert not np.allclose(stages[5].data["fake_before"], stages[5].data["fake_after"])
    np.testing.assert_allclose(stages[5].data["fake_after"], pg.G(torch.from_numpy(stages[0].data["z"])).detach().numpy(),
                               atol=1e-6)
    assert (pg.iteration, pg.d_steps, pg.g_steps) == (1, 1, 1) and pg.history


def test_custom_points_train_and_bad_custom_data_changes_nothing():
    pts = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]])
    pg = Playground(PlaygroundSettings(**TINY, dataset="custom"), custom_points=pts)
    pg.run(2)
    assert "modes" not in pg.metrics()
    ring = Playground(PlaygroundSettings(**TINY))
    with pytest.raises(DatasetError, match="at least 2 points"):
        ring.apply(PlaygroundSettings(**TINY, dataset="custom"))
    assert ring.settings.dataset == "ring-8" and ring.points.name == "ring-8"


def test_csv_parsing_accepts_a_header_and_names_the_bad_line():
    np.testing.assert_allclose(parse_points_csv(b"x,y\n1,2\n3.5, -4\n", "pts.csv"), [[1, 2], [3.5, -4]])
    with pytest.raises(DatasetError, match=r"pts.csv, line 3: expected two numbers"):
        parse_points_csv(b"x,y\n1,2\n3,abc\n", "pts.csv")
    with pytest.raises(DatasetError, match="at least 2 rows"):
        parse_points_csv(b"1,2\n", "one.csv")
    with pytest.raises(DatasetError, match="finite"):
        parse_points_csv(b"1,2\nnan,3\n", "nan.csv")
    with pytest.raises(DatasetError, match="limit is 1 MB"):
        parse_points_csv(b"1,2\n" * 300_000, "big.csv")
    with pytest.raises(DatasetError, match="not a UTF-8"):
        parse_points_csv(b"\xff\xfe\x00\x01", "bin.csv")


def test_every_preset_is_valid():
    for name in SCENARIOS:
        assert preset_settings(name).dataset == "ring-8"
    with pytest.raises(KeyError, match="unknown playground preset"):
        preset_settings("nope")


def test_default_settings_cover_all_eight_modes_of_ring_8():
    """The promise of the page: press Play on ring-8 and, with no changes, every mode gets covered."""
    pg = Playground(preset_settings("Default"))
    pg.run(SCENARIOS["Default"]["iterations"])
    m = pg.metrics()
    assert m["modes"] == 8, m  # the VEEGAN rule (>= 1 high-quality sample per mode)
    assert m["kl"] < 0.5 and m["hq_percent"] > 25, m  # and not by a few stray samples: a fair share is on the modes


def test_playground_presets_are_entries_of_the_one_presets_table():
    """The Learn page's mode-collapse demo and the playground's "Vanilla GAN collapses" are one entry: a run
    started from any playground preset trains the GAN the playground shows."""
    from gan_core.presets import build_config
    assert SCENARIOS["Vanilla GAN collapses on ring-8"]["preset"] == "demo-mode-collapse"
    trained = ("dataset", "arch", "z_dim", "noise", "loss", "g_hidden", "d_hidden", "leaky_slope", "init", "optimizer",
               "lr_d", "lr_g", "beta1", "beta2", "n_critic", "batch_size", "label_smoothing", "r1_gamma", "gp_lambda",
               "clip_value", "spectral_norm", "seed")
    for title, entry in SCENARIOS.items():
        settings, cfg = preset_settings(title), build_config(entry["preset"]).validate()
        assert PlaygroundSettings.from_config(cfg) == settings
        shown = settings.run_config()
        assert {k: getattr(shown, k) for k in trained} == {k: getattr(cfg, k) for k in trained}, title


def test_the_learn_pages_link_opens_the_playground_on_its_demo():
    """Learn's mode-collapse lesson links to the playground with that demo's settings; the playground's own link
    parser takes every one of them, and the result is the "Vanilla GAN collapses" preset."""
    from dataclasses import replace

    from gan_core.playground.session import link_params
    from ui.links import settings_from_query
    params = link_params("demo-mode-collapse")
    assert params == {"r1_gamma": "0.0", "d_layers": "2", "d_width": "16"}
    good, notes = settings_from_query(params, PlaygroundSettings, PlaygroundSettings())
    assert not notes and replace(PlaygroundSettings(), **good) == preset_settings("Vanilla GAN collapses on ring-8")
