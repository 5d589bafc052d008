"""Is it copying? A generator that replays training images scores near 1 and finds them as nearest neighbours;
one that makes new images (here: fresh real digits the GAN never saw, and noise) scores at or below the baseline."""
import json

import numpy as np
import pytest
import torch
from test_cli import run_cli

from gan_core.data import load_images, to_unit_range
from gan_core.engine.metrics import EvaluatorError, get_evaluator
from gan_core.insight import memorisation as mem


@pytest.fixture(scope="module")
def evaluator(evaluator_cache):
    return get_evaluator("mnist-embedded")


def test_copies_of_training_images_score_high_and_are_their_own_neighbours(evaluator):
    pool = mem._pool(evaluator, "mnist-embedded", "./data", 28, 1)
    copies = to_unit_range(pool.images[:200])
    result, view = mem.check_samples(evaluator, copies, "mnist-embedded", "./data", show=4, neighbours=3)
    assert result.score > 0.95 and result.sample_median < 1e-4
    assert [row[0] for row in view.distances] == pytest.approx([0.0] * 4, abs=1e-4)
    assert view.image.shape == (4 * 30 + 2, 4 * 30 + 2, 3)  # 4 rows of sample + 3 neighbours


def test_new_images_score_at_the_real_baseline_or_below(evaluator):
    images = load_images("mnist-embedded", "./data", 28, 1, "cpu").images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    unseen = to_unit_range(images[order[:mem.HELD_OUT_REAL]])  # the held-out real digits: new to the pool
    real, _ = mem.check_samples(evaluator, unseen, "mnist-embedded", "./data", show=0)
    assert real.score == pytest.approx(mem.CLOSE_QUANTILE, abs=0.01)
    noise, _ = mem.check_samples(evaluator, torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1,
                                 "mnist-embedded", "./data", show=0)
    assert noise.score == 0.0 and noise.sample_median > real.real_median
    assert "no sign of copying" in noise.verdict and "copying" in mem.Memorisation(0.9, 0.05, 1, 0, 1, 10, 10).verdict


def test_evaluate_json_has_a_memorisation_key(store, tiny_config, evaluator, capsys):
    run_id = store.start(tiny_config(arch="mlp", steps=4))
    store.wait(run_id)
    code, out, err = run_cli(["evaluate", str(store.run_dir(run_id)), "-n", "200"], capsys)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])["memorisation"]
    assert 0.0 <= result["score"] <= 1.0 and result["num_samples"] == 200 and result["real_baseline"] == 0.05
    assert result["training_images"] == 10_000 - mem.HELD_OUT_REAL


def test_a_2d_run_gets_a_clear_message(store, tiny_config):
    run_id = store.start(tiny_config(dataset="ring-8", arch="mlp2d", z_dim=2, steps=3))
    store.wait(run_id)
    with pytest.raises(EvaluatorError, match="ring-8.*labelled image dataset"):
        mem.check_run(store.run_dir(run_id))
