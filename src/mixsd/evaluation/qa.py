"""Question-answering suites: greedy answers, extracted and matched with :mod:`mixsd.answers`.

Memorisation, paraphrase, 2-hop, retrieval and the toy world's capability probes are all a
:class:`QASuite`: a named list of knowledge records answered greedily from the NAIVE prompt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from mixsd.answers import extract_answer, is_correct, math_scorer
from mixsd.generation import greedy_generate
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord


@dataclass
class QAResult:
    """Score of one suite, with the per-sample log (prompt id, generation, extracted, correct)."""

    name: str
    score: float
    n: int
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QASuite:
    """A named set of questions answered greedily and verified against their answer keys."""

    name: str
    records: list[KnowledgeRecord]
    extractor: str = "auto"
    max_new_tokens: int = 64
    guidance: str = "knowledge"  # only the naive layout of the preset is used
    #: the chat settings given (:func:`mixsd.prompts.chat_options`; empty: the family's)
    chat: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash of what decides the score (questions, keys, extractor, budget, layout, and
        the chat settings when any is given)."""
        blob = json.dumps([[r.prompt, r.answer_key] for r in self.records]
                          + [self.extractor, self.max_new_tokens, str(self.guidance)]
                          + ([math_scorer()] if self.extractor == "math" else [])
                          + ([self.chat] if self.chat else []), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def reference_pairs(self) -> list[tuple[str, str]]:
        """``(question, reference answer)`` pairs (used by the Fisher analysis)."""
        return [(r.prompt, r.answer) for r in self.records]

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32,
                 renderer: PromptRenderer | None = None) -> QAResult:
        return score_qa(model, tokenizer, self.records, name=self.name, extractor=self.extractor,
                        max_new_tokens=self.max_new_tokens, batch_size=batch_size,
                        renderer=renderer or PromptRenderer(tokenizer, self.guidance,
                                                            **self.chat))


def score_qa(model: Any, tokenizer: Any, records: list[KnowledgeRecord], *, name: str = "qa",
             extractor: str = "auto", max_new_tokens: int = 64, batch_size: int = 32,
             renderer: PromptRenderer | None = None) -> QAResult:
    """Accuracy of greedy answers to ``records`` (naive prompts) against their answer keys."""
    renderer = renderer or PromptRenderer(tokenizer)
    prompts = [renderer.naive_ids(r.prompt) for r in records]
    outputs = greedy_generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                              stop_token_ids=renderer.stop_ids(model), batch_size=batch_size)
    samples = []
    for rec, ids in zip(records, outputs):
        text = renderer.decode_target(ids)
        samples.append({"id": rec.id, "prompt": rec.prompt, "answer_key": rec.answer_key,
                        "generation": text,
                        "extracted": extract_answer(text, extractor, rec.answer_key),
                        "correct": is_correct(text, rec.answer_key, extractor)})
    score = sum(s["correct"] for s in samples) / len(samples) if samples else 0.0
    return QAResult(name=name, score=score, n=len(samples), samples=samples)


def suite_fingerprint(suite: Any) -> str:
    """A string that changes whenever what decides the suite's score changes."""
    method = getattr(suite, "fingerprint", None)
    return method() if callable(method) else f"{type(suite).__name__}:{suite.name}"
