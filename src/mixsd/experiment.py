"""The comparison's old import path: ``from mixsd.experiment import CompareConfig,
run_compare`` keeps working; the code is the :mod:`mixsd.compare` package."""

from __future__ import annotations

from mixsd.compare import CompareConfig, run_compare

__all__ = ["CompareConfig", "run_compare"]
