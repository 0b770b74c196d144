"""Bridge to lm-evaluation-harness: run any lm-eval task on an IN-MEMORY model.

The model and tokenizer are wrapped with lm-eval's ``HFLM(pretrained=model, tokenizer=...)``,
so a checkpoint being trained is scored without saving it. Tasks come from lm-eval's registry
or from YAML files in ``include_path`` (``TaskManager(include_path=...)``), which is how a task
over a local JSONL file is defined when hub data sets cannot be reached::

    task: my_task
    dataset_path: json
    dataset_kwargs: {data_files: {test: /data/my_task.jsonl}}
    test_split: test
    output_type: multiple_choice
    doc_to_text: "{{question}}"
    doc_to_choice: "{{choices}}"
    doc_to_target: label
    metric_list: [{metric: acc}]

The suite's score is one metric of the task (``metric``, else the first of
:data:`PREFERRED_METRICS` that the task reports).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError

PREFERRED_METRICS = ("acc", "exact_match", "acc_norm", "pass@1", "f1", "mc2", "bleu")


@dataclass
class LMEvalResult:
    """Score of one lm-eval task plus every metric the task reported."""

    name: str
    score: float
    n: int
    metrics: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)


def pick_metric(metrics: dict[str, Any], metric: str | None = None) -> tuple[str, float]:
    """Choose the headline metric from lm-eval's ``{"acc,none": 0.5, ...}`` mapping."""
    numeric = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)
               and "stderr" not in k and k != "sample_len"}
    wanted = [metric] if metric else list(PREFERRED_METRICS)
    for name in wanted:
        for key, value in numeric.items():
            if key == name or key.split(",")[0] == name:
                return key, value
    if metric:
        raise MixsdError(f"lm-eval task reported no metric {metric!r}; it reported: "
                         f"{', '.join(sorted(numeric)) or 'nothing'}")
    if not numeric:
        raise MixsdError("lm-eval task reported no numeric metric")
    key = sorted(numeric)[0]
    return key, numeric[key]


@dataclass
class LMEvalSuite:
    """One lm-eval task run on the in-memory model.

    Args:
        name: suite name (``lmeval:TASK``).
        task: the lm-eval task name.
        include_path: folder of extra task YAML files (local task definitions).
        num_fewshot: few-shot examples (None = the task's default).
        limit: evaluate only the first ``limit`` documents (None = all).
        metric: the metric to report as the score (None = first of PREFERRED_METRICS).
    """

    name: str
    task: str
    include_path: str | None = None
    num_fewshot: int | None = None
    limit: int | None = None
    metric: str | None = None

    def fingerprint(self) -> str:
        parts = [self.task, str(self.num_fewshot), str(self.limit), str(self.metric)]
        if self.include_path:
            for path in sorted(Path(self.include_path).rglob("*.yaml")):
                parts.append(path.read_text(encoding="utf-8"))
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> LMEvalResult:
        try:
            from lm_eval import simple_evaluate
            from lm_eval.models.huggingface import HFLM
            from lm_eval.tasks import TaskManager
        except ImportError:
            raise MixsdError("lm-eval suites need lm-eval: pip install 'mixsd[eval]'") from None
        manager = TaskManager(include_path=self.include_path,
                              include_defaults=self.include_path is None)
        if self.task not in manager.all_tasks:
            where = f" in {self.include_path}" if self.include_path else ""
            raise MixsdError(f"unknown lm-eval task {self.task!r}{where}")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        out = simple_evaluate(model=lm, tasks=[self.task], task_manager=manager,
                              num_fewshot=self.num_fewshot, limit=self.limit, log_samples=False,
                              bootstrap_iters=0, verbosity="ERROR")
        metrics = (out or {}).get("results", {}).get(self.task)
        if not metrics:
            raise MixsdError(f"lm-eval returned no results for task {self.task!r}")
        _, score = pick_metric(metrics, self.metric)
        n = int((out.get("n-samples", {}).get(self.task) or {}).get("effective", 0))
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return LMEvalResult(name=self.name, score=score, n=n, metrics=clean)
