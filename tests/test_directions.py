"""GANSpace directions and the class walk (gan_core/insight/latent.py), on a briefly trained conditional MLP run."""
import copy

import numpy as np
import pytest
import torch

from gan_core.engine.pictures import generate, noise, to_grid_image
from gan_core.insight.latent import along, class_walk, direction_strip, hidden_features, principal_directions
from gan_core.runs.handle import load_run_generator


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import TINY

    from gan_core import RunStore, build_config
    store = RunStore(tmp_path_factory.mktemp("runs"))
    run_id = store.start(build_config(**{**TINY, "arch": "mlp", "conditional": True, "steps": 30, "grid_size": 10}))
    assert store.wait(run_id, timeout=120) == "finished"
    return load_run_generator(store.run_dir(run_id))


def test_principal_directions_are_unit_ordered_and_move_the_features_most(trained):
    G, cfg, _ = trained
    d = principal_directions(G, cfg, k=5, n=400)
    assert d.vectors.shape == (5, cfg.z_dim)
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(5), atol=1e-5)
    assert d.explained == sorted(d.explained, reverse=True) and 0 < sum(d.explained) <= 1
    z = noise(cfg, 64, 1)
    base = hidden_features(G, z)[0]

    def feature_change(direction):
        return (hidden_features(G, z + direction)[0] - base).norm(dim=1).mean()

    random = torch.randn(20, cfg.z_dim, generator=torch.Generator().manual_seed(3))
    random = random / random.norm(dim=1, keepdim=True)
    assert feature_change(d.vectors[0]) > np.mean([feature_change(r) for r in random])


def test_direction_strip_and_sliders_change_the_image(trained):
    G, cfg, _ = trained
    d = principal_directions(G, cfg, k=3, n=300)
    z = noise(cfg, 1, 0)
    strip = direction_strip(G, z, d, 1, label=3, frames=5)
    assert strip.shape == (32, 5 * 30 + 2, 3)
    moved = generate(G, along(z, d, [0.0, 2.0]), np.array([3]))
    assert not np.allclose(moved, generate(G, z, np.array([3])))


def test_class_walk_morphs_from_one_digit_to_another(trained):
    G, cfg, _ = trained
    G = copy.deepcopy(G)
    with torch.no_grad():
        G.body[0].weight[:, cfg.z_dim:] *= 50  # 30 steps barely teach the labels: make them matter
    z = noise(cfg, 1, 0)
    strip = class_walk(G, z, 3, 8, frames=6)
    first, last = to_grid_image(generate(G, z, np.array([3])), 1), to_grid_image(generate(G, z, np.array([8])), 1)
    close = lambda a, b: np.abs(a.astype(int) - b.astype(int)).max() <= 1  # noqa: E731 - batch of 6 vs 1: rounding
    assert close(strip[2:30, 2:30], first) and close(strip[2:30, -30:-2], last)
    assert not close(strip[2:30, 2:30], strip[2:30, -30:-2])
    with pytest.raises(ValueError, match="not conditional"):
        G.num_classes, saved = 0, G.num_classes
        try:
            class_walk(G, z, 3, 8)
        finally:
            G.num_classes = saved
