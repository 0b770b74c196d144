"""Per-sample logs of an evaluation: where they live and how they are written and read back.

One JSONL file per suite, holding that suite's per-item samples (prompt, generation, score...)::

    SAMPLES_DIR/SUITE.jsonl            mixsd eval --out OUT (SAMPLES_DIR = OUT/samples)
    SAMPLES_DIR/epoch-N/SUITE.jsonl    every evaluated epoch of a training run

A suite name may hold ``/`` and ``:`` (``lm-eval:arc_easy``); both become ``_`` in the file
name. This module is the one place that rule is written; the error buckets read the logs back
through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mixsd.io import atomic_write_jsonl
from mixsd.records import read_json_objects


def sample_log_path(samples_dir: str | Path, suite: str, epoch: int | None = None) -> Path:
    """The sample log of ``suite`` (of epoch ``epoch``, when the logs are kept per epoch)."""
    folder = Path(samples_dir) if epoch is None else Path(samples_dir) / f"epoch-{epoch}"
    return folder / (suite.replace("/", "_").replace(":", "_") + ".jsonl")


def write_sample_logs(samples_dir: str | Path, results: Mapping[str, Any],
                      epoch: int | None = None) -> None:
    """Write each suite result's ``samples`` (none: an empty log) atomically."""
    for name, result in results.items():
        atomic_write_jsonl(sample_log_path(samples_dir, name, epoch),
                           getattr(result, "samples", []))


def read_sample_log(samples_dir: str | Path, suite: str, epoch: int | None = None
                    ) -> list[dict[str, Any]] | None:
    """The samples of one suite's log; None when there is no log."""
    path = sample_log_path(samples_dir, suite, epoch)
    if not path.exists():
        return None
    return [obj for obj, _ in read_json_objects(path, allow_empty=True, strict=False)]
