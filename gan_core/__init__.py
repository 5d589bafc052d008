"""GAN Studio's library: datasets, models, losses, trainer, run store, checkpoints. Never imports streamlit."""
from .config import PRESETS, ConfigError, RunConfig, build_config
from .data import DATASETS, DatasetError
from .losses import LOSSES
from .models import ARCHS
from .store import RunSnapshot, RunStore

__version__ = "0.1.0"
__all__ = ["ARCHS", "DATASETS", "LOSSES", "PRESETS", "ConfigError", "DatasetError", "RunConfig", "RunSnapshot",
           "RunStore", "build_config"]
