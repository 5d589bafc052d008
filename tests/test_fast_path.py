"""The training step stays on the device (no host round trip per iteration), a CPU run may take its share of the
cores, and only the training thread computes on several
(gan_core/threads.py says why). Speed itself is measured in benchmarks/throughput.py, never here."""
from __future__ import annotations

import pytest
import torch

import gan_core.engine.device as device_module
import gan_core.engine.gan as gan_module
import gan_core.engine.threads as threads_module
from gan_core.engine import metrics
from gan_core.engine.trainer import Trainer

HOST_SYNCS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy"}


class HostSyncs(torch.overrides.TorchFunctionMode):
    """Records every Python-level call that pulls a tensor's value to the host (a device sync on a GPU)."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_SYNCS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("overrides", [
    dict(arch="dcgan28", conditional=True, ema=0.99),  # the fast default's shape
    dict(arch="mlp", loss="wgan-gp", n_critic=2),
    dict(arch="dcgan32", loss="wgan", g_every=2, grad_clip=5.0),
    dict(arch="mlp", r1_gamma=1.0, instance_noise=0.1, label_smoothing=0.1),
])
def test_training_iterations_never_read_values_back_to_the_host(tiny_config, overrides):
    trainer = Trainer(tiny_config(**overrides, steps=10))
    trainer.train_iteration()
    with HostSyncs() as seen:
        for _ in range(3):
            trainer.train_iteration()
    assert seen.calls == []
    row = trainer.read_metrics(1.0, 16)  # the one sync, every log_every iterations, still reads all four
    assert row["step"] == 4 and row["g_loss"] is not None and torch.isfinite(torch.tensor(row["d_loss"]))


def test_a_cpu_run_may_take_its_share_of_the_cores_and_an_explicit_count_is_kept(tiny_config, monkeypatch):
    monkeypatch.setattr(threads_module.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert Trainer(tiny_config(arch="mlp")).cpu_threads() == 8  # the ceiling; AdaptiveThreads picks below it
    assert Trainer(tiny_config(arch="mlp", threads=3)).cpu_threads() == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: two processes share the machine's cores
    assert Trainer(tiny_config(arch="dcgan32")).cpu_threads() == 4


def test_only_the_training_thread_computes_on_several_cores(store, tiny_config, monkeypatch):
    """A thread pool made anywhere else (the thread that starts a run, the evaluation worker) would throttle the
    training thread's: GNU OpenMP stops spin-waiting once a process has more pooled threads than cores."""
    seen: dict[str, int] = {}
    build, evaluate = gan_module.build_models, metrics.evaluate_generator

    def building(*args, **kwargs):
        seen["building"] = torch.get_num_threads()
        return build(*args, **kwargs)

    def evaluating(*args, **kwargs):
        seen.setdefault("evaluating", torch.get_num_threads())
        return evaluate(*args, **kwargs)

    def training(trainer):
        seen.setdefault("training", torch.get_num_threads())
        if trainer.evals is not None and trainer.evals.thread is not None:
            trainer.evals._idle.wait(120)  # let the evaluation at step 2 finish (normal runs never wait)

    monkeypatch.setattr(gan_module, "build_models", building)
    monkeypatch.setattr(metrics, "evaluate_generator", evaluating)
    before = torch.get_num_threads()
    run_id = store.start(tiny_config(threads=2, steps=3, eval_every=2, eval_samples=100), hooks=[training])
    assert torch.get_num_threads() == before  # the caller's own setting is back
    assert store.wait(run_id, timeout=300) == "finished"
    assert seen == {"building": 1, "training": 2, "evaluating": 1}


def test_a_run_trains_on_its_thread_count_and_gives_the_process_default_back(store, tiny_config):
    before = torch.get_num_threads()
    seen = []
    run_id = store.start(tiny_config(arch="mlp", threads=1, steps=3), hooks=[lambda t: seen.append(torch.get_num_threads())])
    assert store.wait(run_id, timeout=60) == "finished"
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before  # this thread's own setting was never touched


@pytest.mark.parametrize("overrides", [
    dict(arch="mlp", conditional=True),
    dict(arch="dcgan32", d_norm="layer", loss="wgan-gp", r1_gamma=1.0, instance_noise=0.1),
])
def test_one_d_call_over_real_and_fake_trains_like_two(tiny_config, overrides):
    cfg = tiny_config(**overrides, optimizer="sgd", steps=10,  # SGD: Adam would magnify rounding in near-zero grads
                      precision="fp32")  # an fp32 identity; on an AMX CPU auto's bf16 rounds the two paths apart
    joint, split = Trainer(cfg), Trainer(cfg)
    split.gan.joint_d = False
    assert joint.gan.joint_d
    for _ in range(3):
        joint.train_iteration()
        split.train_iteration()
    for a, b in zip([*joint.gan.D.parameters(), *joint.gan.G.parameters()],
                    [*split.gan.D.parameters(), *split.gan.G.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_batchnorm_d_scores_real_and_fake_separately(tiny_config):
    assert not Trainer(tiny_config(arch="dcgan32", d_norm="batch")).gan.joint_d  # one call would mix their batch statistics
