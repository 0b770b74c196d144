"""Multiple-choice suites (MMLU style), scored by the log-likelihood of each choice.

JSONL format, one question per line::

    {"id": "q1", "question": "The capital of France is", "choices": ["Paris", "Rome"],
     "answer": 0}

* ``question`` (string): shown through the naive prompt layout of the suite's guidance preset;
* ``choices`` (list of >= 2 non-empty strings);
* ``answer``: the index of the correct choice (0-based int), a letter (``"A"`` = first), or
  the text of the correct choice;
* ``id`` (optional, default ``<file stem>-<line>``).

The model's pick is the choice whose text, as a continuation of the prompt (a space before
it unless a chat template is used), has the highest summed log-probability
(``normalize="chars"`` divides by the choice's character length, like lm-eval's acc_norm).
The score is the accuracy of the picks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import RecordError
from mixsd.evaluation.loglik import continuation_logprobs
from mixsd.evaluation.qa import QAResult
from mixsd.generation import pad_token_id
from mixsd.prompts import PromptRenderer
from mixsd.records import read_json_objects


@dataclass
class MCQItem:
    """One multiple-choice question; ``answer`` is the index of the correct choice."""

    id: str
    question: str
    choices: list[str]
    answer: int


def _answer_index(value: Any, choices: list[str], ctx: dict) -> int:
    if isinstance(value, bool):
        raise RecordError("must be an index, a letter or a choice text", field="answer", **ctx)
    if isinstance(value, int):
        index = value
    elif isinstance(value, str) and len(value.strip()) == 1 and value.strip().isalpha():
        index = ord(value.strip().upper()) - ord("A")
    elif isinstance(value, str) and value in choices:
        index = choices.index(value)
    else:
        raise RecordError(f"must be an index, a letter or a choice text, got {value!r}",
                          field="answer", **ctx)
    if not 0 <= index < len(choices):
        raise RecordError(f"points past the {len(choices)} choices: {value!r}", field="answer",
                          **ctx)
    return index


def read_mcq(path: str | Path) -> list[MCQItem]:
    """Read multiple-choice items; bad lines raise :class:`RecordError` naming line and field."""
    path = Path(path)
    items: list[MCQItem] = []
    for n, (obj, ctx) in enumerate(read_json_objects(path), start=1):
        if not isinstance(obj, dict):
            raise RecordError("a question must be a JSON object", **ctx)
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise RecordError("missing or empty", field="question", **ctx)
        choices = obj.get("choices")
        if (not isinstance(choices, list) or len(choices) < 2
                or not all(isinstance(c, str) and c.strip() for c in choices)):
            raise RecordError("must be a list of at least 2 non-empty strings", field="choices",
                              **ctx)
        if "answer" not in obj:
            raise RecordError("missing required field", field="answer", **ctx)
        items.append(MCQItem(id=str(obj.get("id", f"{path.stem}-{n}")), question=question,
                             choices=list(choices),
                             answer=_answer_index(obj["answer"], choices, ctx)))
    return items


@dataclass
class MCQSuite:
    """Multiple-choice accuracy by log-likelihood of each choice (see module docstring)."""

    name: str
    items: list[MCQItem]
    guidance: str = "knowledge"
    normalize: str = "none"  # "none" | "chars"
    chat: dict[str, Any] = field(default_factory=dict)  # chat settings given (QASuite.chat)

    def fingerprint(self) -> str:
        """Hash of what decides the score (items, layout, normalisation, chat settings)."""
        blob = json.dumps([[i.question, i.choices, i.answer] for i in self.items]
                          + [self.guidance, self.normalize]
                          + ([self.chat] if self.chat else []), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def reference_pairs(self) -> list[tuple[str, str]]:
        """``(question, correct choice)`` pairs (used by the Fisher analysis)."""
        return [(i.question, i.choices[i.answer]) for i in self.items]

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32,
                 renderer: PromptRenderer | None = None) -> QAResult:
        renderer = renderer or PromptRenderer(tokenizer, self.guidance, **self.chat)
        sep = "" if renderer.use_chat_template else " "
        pairs, owners = [], []
        for k, item in enumerate(self.items):
            context = renderer.naive_ids(item.question)
            for choice in item.choices:
                cont = list(tokenizer(sep + choice, add_special_tokens=False)["input_ids"])
                pairs.append((context, cont))
                owners.append(k)
        pad = pad_token_id(tokenizer)
        logprobs = continuation_logprobs(model, pairs, batch_size=batch_size, pad_id=pad)
        per_item: list[list[float]] = [[] for _ in self.items]
        for k, lp in zip(owners, logprobs):
            per_item[k].append(sum(lp))
        samples = []
        for item, scores in zip(self.items, per_item):
            ranked = scores
            if self.normalize == "chars":
                ranked = [s / max(1, len(c)) for s, c in zip(scores, item.choices)]
            pick = max(range(len(ranked)), key=lambda j: (ranked[j], -j))
            samples.append({"id": item.id, "prompt": item.question, "answer_key":
                            item.choices[item.answer], "generation": item.choices[pick],
                            "extracted": item.choices[pick], "logprobs": scores,
                            "correct": pick == item.answer})
        score = sum(s["correct"] for s in samples) / len(samples) if samples else 0.0
        return QAResult(name=self.name, score=score, n=len(samples), samples=samples)
