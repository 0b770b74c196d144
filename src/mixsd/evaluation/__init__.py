"""Measurements (method.md, "Measurements"): memorisation, retention suites, drift, selection."""

from mixsd.evaluation.qa import QAResult, QASuite, score_qa

__all__ = ["QAResult", "QASuite", "score_qa"]
