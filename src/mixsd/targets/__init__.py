"""Target construction (``mixsd targets``): MixSD mixing or SFT's y*, verified and resumable.

* :class:`TargetsConfig` — the stage config (``--lambda``, ``--temperature``, ...).
* :func:`build_targets` — records in, :class:`~mixsd.records.TargetRecord` list out.
* :func:`run_targets` — file in, file out: streaming, resume, multi-process shards.

The fused two-conditional loop is :mod:`mixsd.targets.engine`; its slow reference is
:mod:`mixsd.targets.reference`.
"""

from mixsd.targets.build import TargetBuilder, build_targets
from mixsd.targets.config import TargetsConfig
from mixsd.targets.engine import MixJob, MixOutput, MixSettings, mix_generate
from mixsd.targets.run import run_targets

__all__ = [
    "TargetsConfig",
    "build_targets",
    "run_targets",
    "TargetBuilder",
    "MixJob",
    "MixOutput",
    "MixSettings",
    "mix_generate",
]
