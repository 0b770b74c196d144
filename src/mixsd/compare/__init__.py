"""``mixsd compare``: every method on one corpus with identical evaluation.

The package's layout is its data flow (docs/architecture.md):

    config.py    CompareConfig, the grid's values
    keys.py      what decides the comparison's artifacts (folder, base scores, run entries)
    context.py   what every run shares, prepared once (corpus, base model, targets, NLL)
    plan.py      RunPlan and the grid planner; the stage configs of a plan
    rounds.py    the continual-injection planner
    loop.py      the one loop: execute every plan once (the entry cache)
    train.py     the recipe of a trained run; memit.py: the recipe of an edit
    results.py   results.json and the report
"""

from __future__ import annotations

from mixsd.compare.config import CompareConfig
from mixsd.compare.loop import run_compare
from mixsd.compare.plan import RunPlan

__all__ = ["CompareConfig", "RunPlan", "run_compare"]
