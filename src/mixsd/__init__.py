"""mixsd: Mixed Contextual Self-Distillation (MixSD) for knowledge injection.

The flow (see docs/design): corpus -> records.jsonl -> targets.jsonl -> checkpoint/ ->
results.json -> report. Public entry points are re-exported lazily so that
``import mixsd`` stays cheap (no torch import until a stage is used)::

    from mixsd import CompareConfig, TargetsConfig, TrainConfig, run_compare, run_targets, train

"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access.
_LAZY = {
    "MixsdError": "mixsd.errors",
    "KnowledgeRecord": "mixsd.records",
    "read_records": "mixsd.records",
    "write_records": "mixsd.records",
    "read_targets": "mixsd.records",
    "PromptRenderer": "mixsd.prompts",
    "GuidancePreset": "mixsd.prompts",
    "extract_answer": "mixsd.answers",
    "answers_match": "mixsd.answers",
    "is_correct": "mixsd.answers",
    "load_model_and_tokenizer": "mixsd.models",
    "TargetsConfig": "mixsd.targets",
    "build_targets": "mixsd.targets",
    "run_targets": "mixsd.targets",
    "inject": "mixsd.injection",
    "InjectConfig": "mixsd.injection",
    "export_targets": "mixsd.targets.export",
    "TrainConfig": "mixsd.training",
    "train": "mixsd.training",
    "EvalConfig": "mixsd.evaluation.run",
    "run_eval": "mixsd.evaluation.run",
    "CompareConfig": "mixsd.compare",
    "run_compare": "mixsd.compare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixsd' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
