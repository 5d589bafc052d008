"""GAN Studio's library: datasets, models, losses, trainer, run store, checkpoints. Never imports streamlit."""
from .config import ConfigError, RunConfig
from .data import DATASETS, DatasetError
from .losses import LOSSES
from .models import ARCHS
from .presets import PRESETS, build_config
from .runs.record import RunSnapshot
from .runs.store import RunStore

__version__ = "0.1.0"
__all__ = ["ARCHS", "DATASETS", "LOSSES", "PRESETS", "ConfigError", "DatasetError", "RunConfig", "RunSnapshot",
           "RunStore", "build_config"]
