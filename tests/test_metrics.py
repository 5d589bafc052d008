"""Quality metrics: the evaluator (accuracy, cache reuse, rebuild when corrupt), what it measures (Fréchet
distance floor vs noise, coverage of a one-class generator, label accuracy), the live evaluation inside a
run (metrics.csv, eval.json), and `python -m gan_core evaluate`.

The evaluator trains once per test session, into the session's temp cache (conftest.evaluator_cache)."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

from gan_core.cli import main
from gan_core.data import to_unit_range
from gan_core.engine import metrics


@pytest.fixture(scope="session")
def evaluator(evaluator_cache):
    return metrics.get_evaluator("mnist-embedded")


@pytest.fixture(scope="session")
def stats(evaluator):
    return metrics.real_stats(evaluator, 28, 1)


@pytest.fixture(scope="session")
def digits():
    """(train images, train labels, held-out images, held-out labels) exactly as the evaluator split them."""
    return metrics._splits("mnist-embedded", "./data")


class RealDigits(nn.Module):
    """A 'generator' built, not trained: it returns copies of real digits (of the requested class when
    conditional, else cycling through `pool`)."""

    def __init__(self, images_u8, labels, num_classes=0):
        super().__init__()
        self.images, self.labels, self.num_classes = to_unit_range(images_u8), labels, num_classes

    def forward(self, z, y=None):
        if y is None:
            return self.images[torch.arange(len(z)) % len(self.images)]
        picks = [torch.nonzero(self.labels == c)[i % 50, 0] for i, c in enumerate(y.tolist())]
        return self.images[torch.stack(picks)]


def test_evaluator_is_accurate_on_held_out_digits(evaluator, digits):
    x_train, _, x_test, y_test = digits
    assert evaluator.accuracy >= 0.97
    assert evaluator.held_out == len(x_test) == 2000 and evaluator.trained_on == len(x_train)
    assert metrics.accuracy(evaluator.net, x_test, y_test) == pytest.approx(evaluator.accuracy)


def test_real_digits_sit_at_the_distance_floor_and_noise_far_away(evaluator, stats, digits):
    x_train, _, x_test, _ = digits
    held_out = metrics.measure(evaluator, stats, to_unit_range(x_test))
    # the floor: another real sample of the same size, measured the same way
    floor = metrics.measure(evaluator, stats, to_unit_range(x_train[torch.randperm(len(x_train))[:len(x_test)]]))
    noise = metrics.measure(evaluator, stats, torch.rand(len(x_test), 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert held_out.fid <= 2 * floor.fid
    assert noise.fid >= 100 * max(held_out.fid, floor.fid)
    assert held_out.modes_covered == 10 and held_out.diversity == pytest.approx(1.0, abs=0.15)


def test_a_generator_of_one_class_covers_one_mode(evaluator, stats, digits):
    _, _, x_test, y_test = digits
    only_threes = RealDigits(x_test[y_test == 3], y_test[y_test == 3])
    z = torch.randn(500, 8)
    result = metrics.evaluate_generator(only_threes, evaluator, stats, z)
    assert result.modes_covered == 1 and result.modes_text == "modes covered: 1/10"
    assert max(range(10), key=lambda c: result.histogram[c]) == 3 and sum(result.histogram) == 500
    assert result.label_accuracy is None
    everything = metrics.evaluate_generator(RealDigits(x_test, y_test), evaluator, stats, z)
    assert everything.modes_covered == 10
    assert result.diversity < 0.6 * everything.diversity  # one class is far less varied than all ten


def test_label_accuracy_checks_the_requested_digit(evaluator, stats, digits):
    _, _, x_test, y_test = digits
    labels = torch.arange(500) % 10
    obeys = metrics.evaluate_generator(RealDigits(x_test, y_test, 10), evaluator, stats, torch.randn(500, 8), labels)
    assert obeys.label_accuracy >= 0.95 and obeys.modes_covered == 10

    class IgnoresLabels(RealDigits):
        def forward(self, z, y=None):
            return super().forward(z, torch.full_like(y, 3))

    ignores = metrics.evaluate_generator(IgnoresLabels(x_test, y_test, 10), evaluator, stats, torch.randn(500, 8), labels)
    assert ignores.label_accuracy <= 0.15


def test_cached_evaluator_is_reused_without_retraining(evaluator, monkeypatch):
    metrics.forget_loaded()  # as a new process would: only the cache folder is left

    def no_training(*a, **k):
        raise AssertionError("the cached evaluator should have been loaded, not retrained")

    monkeypatch.setattr(metrics, "train_evaluator", no_training)
    again = metrics.get_evaluator("mnist-embedded")
    assert again.ident == evaluator.ident and again.accuracy == evaluator.accuracy
    assert metrics.get_evaluator("mnist-embedded") is again  # and kept in memory after that


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-shapes"])
def test_corrupt_evaluator_cache_is_rebuilt(damage, evaluator, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr(metrics, "TRAIN_STEPS", 20)  # accuracy does not matter here: only that it retrains
    path = metrics.evaluator_path("mnist-embedded")
    path.write_bytes(evaluator.path.read_bytes())
    if damage == "garbage":
        path.write_bytes(b"not a safetensors file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    else:  # readable, right format tag, wrong tensors
        save_file({"0.weight": torch.zeros(3, 3)}, str(path), metadata={"format": metrics.FORMAT, "dataset": "mnist-embedded"})
    calls, notes = [], []
    real_train = metrics.train_evaluator
    monkeypatch.setattr(metrics, "train_evaluator", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    rebuilt = metrics.get_evaluator("mnist-embedded", log=notes.append)
    assert calls == [1]
    assert any("rebuilding" in n for n in notes)
    metrics.forget_loaded()
    assert metrics.load_evaluator("mnist-embedded").ident == rebuilt.ident  # the cache is sound again
    metrics.forget_loaded()


def test_corrupt_real_statistics_are_recomputed(evaluator, stats, tmp_path, monkeypatch):
    path = metrics.real_stats_path("mnist-embedded", 28, 1)
    corrupt = path.with_suffix(".corrupt")
    corrupt.write_bytes(b"\x00" * 64)
    corrupt.replace(path)  # a new file: `stats` may still map the old one (rewriting it in place is a SIGBUS)
    metrics.forget_loaded()
    again = metrics.real_stats(metrics.get_evaluator("mnist-embedded"), 28, 1)
    assert again.count == stats.count and torch.allclose(again.cov_sum, stats.cov_sum)
    assert metrics.load_evaluator("mnist-embedded").ident == evaluator.ident  # the classifier was not touched


def test_cache_help_says_where_and_how_to_rebuild(evaluator_cache):
    text = metrics.cache_help("mnist-embedded")
    assert str(evaluator_cache) in text and "GAN_STUDIO_CACHE" in text and "--rebuild" in text


# ---------------------------------------------------------------------- inside a run
@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, evaluator):
    """A tiny conditional run with an evaluation every 2 steps; a hook waits for each one to finish, so the
    periodic results provably land in metrics.csv (in normal runs the trainer never waits)."""
    from gan_core import RunStore, build_config
    store = RunStore(tmp_path_factory.mktemp("runs"))
    cfg = build_config(g_features=8, d_features=8, batch_size=16, device="cpu", log_every=1, sample_every=1000,
                       checkpoint_every=1000, steps=6, grid_size=10, eval_every=2, eval_samples=100).validate()

    def wait_for_evaluation(trainer):
        if trainer.evals is not None and trainer.evals.thread is not None:
            trainer.evals._idle.wait(120)

    run_id = store.start(cfg, hooks=[wait_for_evaluation])
    status = store.wait(run_id, timeout=300)
    yield store, run_id, status
    store.shutdown()


def test_a_run_logs_quality_metrics_and_a_final_evaluation(evaluated_run):
    store, run_id, status = evaluated_run
    assert status == "finished"
    snap = store.snapshot(run_id)
    quality = snap.metrics.dropna(subset=["fid"])
    assert len(quality) >= 3  # steps 2 and 4, then the final one at step 6
    assert quality["step"].iloc[-1] == 6
    assert quality["modes_covered"].between(0, 10).all() and quality["confidence"].between(0, 1).all()
    assert quality["label_accuracy"].notna().all()  # a conditional run
    latest = snap.extra["eval"]
    assert latest["final"] and latest["step"] == 6 and sum(latest["histogram"]) == 100
    assert [h["step"] for h in latest["history"]] == [2, 4, 6]
    assert latest["evaluator"]["accuracy"] >= 0.97
    assert not [t for t in __import__("threading").enumerate() if t.name.startswith("gan-eval-")]


def test_evaluate_cli_prints_one_json_line(evaluated_run, capsys):
    store, run_id, _ = evaluated_run
    assert main(["evaluate", str(store.run_dir(run_id)), "-n", "200"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["step"] == 6 and result["num_samples"] == 200 and sum(result["histogram"]) == 200
    assert result["modes_text"] == f"modes covered: {result['modes_covered']}/10"
    assert {"fid", "confidence", "label_accuracy", "diversity"} <= set(result)


def test_evaluate_cli_explains_runs_it_cannot_measure(store, tiny_config, capsys):
    run_id = store.start(tiny_config(dataset="ring-8", arch="mlp2d", steps=3))
    store.wait(run_id)
    assert main(["evaluate", str(store.run_dir(run_id))]) == 2
    assert "labelled image dataset" in capsys.readouterr().err
    assert store.evaluation(run_id) is None


def test_eval_every_zero_turns_evaluation_off(store, tiny_config):
    run_id = store.start(tiny_config(steps=4, eval_every=0))
    assert store.wait(run_id) == "finished"
    snap = store.snapshot(run_id)
    assert snap.metrics["fid"].isna().all() and snap.extra["eval"] is None
