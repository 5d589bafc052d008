"""Task registry: what a run learns. `generate` draws new images from noise (every GAN preset); `inpaint` and
`superres` train an image-to-image restorer (gan_core/restore/training.py). Each entry names its trainer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    trainer: Callable[[], type]  # imported on use: config.py reads this table without importing torch code
    settings: tuple = ()  # the config fields only this task uses (the Train form shows them for it alone)


def _generator_trainer():
    from .trainer import Trainer
    return Trainer


def _restorer_trainer():
    from .restore.training import RestorerTrainer
    return RestorerTrainer


TASKS: dict[str, TaskInfo] = {
    "generate": TaskInfo("generate", "Draw new images from noise: the GAN of the tutorials.", _generator_trainer),
    "inpaint": TaskInfo("inpaint", "Fill holes: G sees an image with holes (and where they are) and paints them in; "
                        "D judges (damaged, restored) pairs.", _restorer_trainer, ("mask",)),
    "superres": TaskInfo("superres", "Sharpen: G sees a low-resolution image and draws it at full size; D judges "
                         "(low-res, restored) pairs.", _restorer_trainer, ("factor", "downsample")),
}


def make_trainer(cfg):
    """The trainer of a validated config's task."""
    return TASKS[cfg.task].trainer()(cfg)
