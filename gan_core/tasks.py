"""Task registry: what a run learns. `generate` draws new images from noise (every GAN preset); `inpaint` and
`superres` train an image-to-image restorer (gan_core/restore/). Names and settings only: which trainer runs a
task is runs/trainers.py's one map, so this table stays below the engine."""
from __future__ import annotations

from dataclasses import dataclass

MASK_KINDS = ("centre", "left", "bottom", "random", "strokes", "mixed")  # `mixed`: a random kind per batch
FACTORS = (2, 4)
DOWNSAMPLERS = ("area", "bicubic")


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    restores: bool = False  # an image-to-image restorer (G sees a damaged image), not a noise → image GAN
    settings: tuple = ()  # the config fields only this task uses (the Train form shows them for it alone)


TASKS: dict[str, TaskInfo] = {
    "generate": TaskInfo("generate", "Draw new images from noise: the GAN of the tutorials."),
    "inpaint": TaskInfo("inpaint", "Fill holes: G sees an image with holes (and where they are) and paints them in; "
                        "D judges (damaged, restored) pairs.", True, ("mask",)),
    "superres": TaskInfo("superres", "Sharpen: G sees a low-resolution image and draws it at full size; D judges "
                         "(low-res, restored) pairs.", True, ("factor", "downsample")),
}
RESTORER_TASKS = tuple(name for name, task in TASKS.items() if task.restores)
