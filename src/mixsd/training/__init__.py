"""Training: NLL on any targets file (SFT, MixSD, offline self-distillation) and OPSD.

MixSD is "SFT on better targets" (docs/method.md, "Training"), so one trainer serves SFT, lambda = 0
and MixSD; OPSD (:mod:`mixsd.training.opsd`) is the on-policy baseline. Entry point:
:func:`train`; checkpoints load back with :func:`load_checkpoint`.
"""

from mixsd.training.checkpoints import complete_checkpoints, load_checkpoint, read_metrics
from mixsd.training.config import TrainConfig
from mixsd.training.run import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train", "load_checkpoint", "complete_checkpoints",
           "read_metrics"]
