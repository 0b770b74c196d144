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
:data:`PREFERRED_METRICS` that the task reports). The include folder ADDS to lm-eval's
built-in tasks (a task of the same name in it takes precedence).

lm-eval's own options pass through: ``chat_template`` (``apply_chat_template``: the model's
chat template with the chat convention of :mod:`mixsd.prompts`, its keyword arguments as
``chat_template_args``, Qwen3 thinking off unless asked, and its system prompt as the
``system_instruction``), ``fewshot_as_multiturn`` (few-shot examples as turns, with the chat
template), ``gen_kwargs`` (generation settings of generative tasks) and ``unsafe_code``
(``confirm_run_unsafe_code``: tasks that execute the model's code, such as HumanEval; off
unless asked). Every document's sample (prompt, target, response, metrics) is kept in the
result, so ``mixsd eval --out`` and the epoch evaluator write it to the sample logs.
"""

from __future__ import annotations

import hashlib
import json
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
        chat_template: apply the model's chat template (lm-eval's ``apply_chat_template``).
        fewshot_as_multiturn: few-shot examples as chat turns (with ``chat_template``).
        gen_kwargs: generation keyword arguments of generative tasks.
        unsafe_code: allow tasks that run the model's generated code (HumanEval, MBPP).
        chat: the chat settings given (:func:`mixsd.prompts.chat_options`).
    """

    name: str
    task: str
    include_path: str | None = None
    num_fewshot: int | None = None
    limit: int | None = None
    metric: str | None = None
    chat_template: bool = False
    fewshot_as_multiturn: bool = True
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    unsafe_code: bool = False
    chat: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """What decides the score besides the task, model and data, only where it differs
        from lm-eval's defaults (so the fingerprints of suites made before stay the same)."""
        found: dict[str, Any] = {}
        if self.gen_kwargs:
            found["gen_kwargs"] = dict(self.gen_kwargs)
        if self.chat_template:
            found.update(chat_template=True, fewshot_as_multiturn=self.fewshot_as_multiturn,
                         **self.chat)
        return found

    def fingerprint(self) -> str:
        parts = [self.task, str(self.num_fewshot), str(self.limit), str(self.metric)]
        if self.include_path:
            for path in sorted(Path(self.include_path).rglob("*.yaml")):
                parts.append(path.read_text(encoding="utf-8"))
        if self.settings():
            parts.append(json.dumps(self.settings(), sort_keys=True))
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> LMEvalResult:
        try:
            from lm_eval import simple_evaluate
            from lm_eval.models.huggingface import HFLM
        except ImportError:
            raise MixsdError("lm-eval suites need lm-eval: pip install 'mixsd[eval]'") from None
        manager = _task_manager(self.include_path)
        if self.task not in manager.all_tasks:
            where = f" (built-in or in {self.include_path})" if self.include_path else ""
            raise MixsdError(f"unknown lm-eval task {self.task!r}{where}")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        chat = self._chat(tokenizer)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                  chat_template_args=dict(chat.template_kwargs) if chat else None)
        out = simple_evaluate(model=lm, tasks=[self.task], task_manager=manager,
                              num_fewshot=self.num_fewshot, limit=self.limit, log_samples=True,
                              bootstrap_iters=0, verbosity="ERROR",
                              apply_chat_template=chat is not None,
                              fewshot_as_multiturn=chat is not None and self.fewshot_as_multiturn,
                              system_instruction=chat.system_prompt if chat else None,
                              gen_kwargs=dict(self.gen_kwargs) or None,
                              confirm_run_unsafe_code=self.unsafe_code)
        metrics = (out or {}).get("results", {}).get(self.task)
        if not metrics:
            raise MixsdError(f"lm-eval returned no results for task {self.task!r}")
        key, score = pick_metric(metrics, self.metric)
        n = int((out.get("n-samples", {}).get(self.task) or {}).get("effective", 0))
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
        samples = sample_rows((out.get("samples") or {}).get(self.task) or [], key)
        return LMEvalResult(name=self.name, score=score, n=n, metrics=clean, samples=samples)

    def _chat(self, tokenizer: Any) -> Any:
        """The chat convention lm-eval renders with (:func:`mixsd.prompts.chat_convention`),
        or None without ``chat_template``."""
        if not self.chat_template:
            return None
        if not getattr(tokenizer, "chat_template", None):
            raise MixsdError(f"{self.name}: lmeval_chat_template is set but the model's "
                             "tokenizer has no chat template (flag --lmeval-chat-template)")
        from mixsd.prompts import chat_convention

        return chat_convention(tokenizer, self.chat.get("chat_template_kwargs"),
                               self.chat.get("system_prompt"))


def _task_manager(include_path: str | None) -> Any:
    """lm-eval's tasks: the built-in ones plus those of ``include_path`` (which win a name
    clash), indexed once per process (the built-in index takes seconds)."""
    from lm_eval.tasks import TaskManager

    key = str(include_path or "")
    if key not in _MANAGERS:
        _MANAGERS[key] = TaskManager(include_path=include_path, include_defaults=True)
    return _MANAGERS[key]


_MANAGERS: dict[str, Any] = {}


def sample_rows(logged: list[dict[str, Any]], metric_key: str) -> list[dict[str, Any]]:
    """lm-eval's logged samples as mixsd sample-log rows: ``id`` (the document), ``prompt``
    (the model's context), ``target``, ``response`` (the filtered answer), ``correct`` (the
    headline metric where it is 0 or 1 per document, else None) and every metric."""
    metric = metric_key.split(",")[0]
    rows = []
    for item in logged:
        args = item.get("arguments") or [[""]]
        value = item.get(metric)
        rows.append(_plain({
            "id": str(item.get("doc_id")), "prompt": args[0][0] if args[0] else "",
            "target": item.get("target"), "response": item.get("filtered_resps"),
            "correct": bool(value) if value in (0, 1) else None,
            "metrics": {m: item.get(m) for m in item.get("metrics") or []}}))
    return rows


def _plain(obj: Any) -> Any:
    """``obj`` with every value JSON can not write (tuples, numpy numbers) made plain."""
    return json.loads(json.dumps(obj, default=str))
