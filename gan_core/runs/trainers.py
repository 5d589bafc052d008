"""The one task → trainer map. Starting, continuing and queued runs (RunStore) and every DDP rank (cli.py) build
their trainer here, so a restorer run never trains as a noise → image GAN whichever way it started."""
from __future__ import annotations

from ..engine.trainer import Trainer
from ..restore.training import RestorerTrainer
from ..tasks import TASKS

TRAINERS: dict[str, type] = {"generate": Trainer, "inpaint": RestorerTrainer, "superres": RestorerTrainer}
assert set(TRAINERS) == set(TASKS), "every task in tasks.TASKS needs its trainer here"


def make_trainer(cfg):
    """The trainer of a validated config's task."""
    return TRAINERS[cfg.task](cfg)
