"""docs/contributing.md stays true: the files it names exist, a new loss is one registry entry and nothing else,
a new task is one TASKS entry plus one TRAINERS entry."""
import re
import threading

import pytest

from conftest import REPO
from gan_core import RunStore, build_config
from gan_core.config import field_choices
from gan_core.engine.trainer import Trainer
from gan_core.losses import LOSSES, Loss
from gan_core.runs import trainers
from gan_core.runs.export import script_for
from gan_core.tasks import TASKS, TaskInfo

GUIDE = (REPO / "docs" / "contributing.md").read_text()


def test_every_file_the_guide_names_exists():
    named = set(re.findall(r"`((?:gan_core|tests|pages|ui|docs)/[\w/.]+|app\.py)`", GUIDE))
    assert {"gan_core/losses.py", "gan_core/tasks.py", "gan_core/runs/trainers.py", "app.py"} <= named
    assert sorted(p for p in named if not (REPO / p).exists()) == []


def test_the_readme_points_to_the_guide():
    assert "docs/contributing.md" in (REPO / "README.md").read_text()


def softplus_d(real, fake, real_target=1.0):
    """A loss a contributor might add: the non-saturating loss written with softplus."""
    import torch.nn.functional as F
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def softplus_g(fake):
    import torch.nn.functional as F
    return F.softplus(-fake).mean()


def test_a_new_loss_is_one_registry_entry(monkeypatch, store, tiny_config):
    monkeypatch.setitem(LOSSES, "softplus", Loss(softplus_d, softplus_g, "probability", "Softplus form of bce."))
    assert "softplus" in field_choices("loss")  # the form and --loss offer it
    cfg = tiny_config(arch="mlp", loss="softplus", steps=2)
    run_id = store.start(cfg)  # the trainer and the GAN apply it
    assert store.wait(run_id, 120) == "finished" and store.snapshot(run_id).metrics["d_loss"].notna().all()
    script = script_for(cfg, 2)  # the exported script carries it
    assert "def softplus_d(" in script and "LOSS = Loss(softplus_d, softplus_g" in script


def test_a_new_task_is_one_tasks_entry_and_one_trainers_entry(monkeypatch, tmp_path, tiny_config):
    class CountingTrainer(Trainer):
        built = []

        def __init__(self, cfg):
            super().__init__(cfg)
            CountingTrainer.built.append(cfg.task)

    monkeypatch.setitem(TASKS, "copy-generate", TaskInfo("copy-generate", "A noise → image GAN under another name."))
    assert "copy-generate" in field_choices("task")
    with pytest.raises(KeyError):  # without its trainer entry the task cannot start
        trainers.make_trainer(tiny_config(arch="mlp", task="copy-generate"))
    monkeypatch.setitem(trainers.TRAINERS, "copy-generate", CountingTrainer)
    store = RunStore(tmp_path / "runs", max_runs=1)
    try:
        release, reached = threading.Event(), threading.Event()
        first = store.start(tiny_config(arch="mlp", steps=2), hooks=[lambda t: (reached.set(), release.wait(60))])
        reached.wait(60)
        ran = []
        queued = store.start(tiny_config(arch="mlp", task="copy-generate", steps=2),  # through the queue too
                             hooks=[lambda t: ran.append(type(t))])
        release.set()
        assert store.wait(first, 120) == "finished" and store.wait(queued, 120) == "finished"
    finally:
        store.shutdown(timeout=60)
    assert ran and set(ran) == {CountingTrainer} and set(CountingTrainer.built) == {"copy-generate"}


def test_every_task_has_its_trainer():
    assert set(trainers.TRAINERS) == set(TASKS)
    assert build_config("inpaint-mnist").validate().task in trainers.TRAINERS
