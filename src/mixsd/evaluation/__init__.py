"""Measurements (docs/method.md, "Measurements"): memorisation, retention suites, drift, selection.

* :mod:`.suites` — the registry (``get_suites("toy,math:f.jsonl,mcq:g.jsonl,lmeval:task")``);
* :mod:`.qa`, :mod:`.mcq`, :mod:`.lmeval` — the suite kinds;
* :mod:`.retention` — % of the base score, cached base scores;
* :mod:`.drift` — KL(base ‖ model) on neutral prompts;
* :mod:`.selection` — :func:`first_peak`;
* :mod:`.buckets` — error buckets of wrong answers;
* :mod:`.callback` — the per-epoch training callback;
* :mod:`.results` — the results.json structure.
"""

from mixsd.evaluation.buckets import classify_error, error_buckets, injected_names
from mixsd.evaluation.callback import EpochEvaluator, make_epoch_evaluator
from mixsd.evaluation.drift import drift_kl
from mixsd.evaluation.qa import QAResult, QASuite, score_qa
from mixsd.evaluation.results import (
    epoch_entry,
    make_base,
    make_results,
    make_run,
    read_results,
    retention_at_equal_memorization,
    validate_results,
    write_results,
)
from mixsd.evaluation.retention import base_scores, retained, retention_mean, retention_table
from mixsd.evaluation.selection import first_peak
from mixsd.evaluation.suites import Suite, get_suites, memorization_suites

__all__ = [
    "EpochEvaluator", "QAResult", "QASuite", "Suite", "base_scores", "classify_error",
    "drift_kl", "epoch_entry", "error_buckets", "first_peak", "get_suites", "injected_names",
    "make_base", "make_epoch_evaluator", "make_results", "make_run", "memorization_suites",
    "read_results", "retained", "retention_at_equal_memorization", "retention_mean",
    "retention_table", "score_qa", "validate_results", "write_results",
]
