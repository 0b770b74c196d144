"""Instruction following: does the model still obey simple format requests?

``instruct`` is a shipped probe (``mixsd/evaluation/data/instructions.jsonl``) of held-out
prompts that each ask for a format: one word, a number only, yes or no, a list of N items,
capital letters only, at most N words. A greedy answer from the naive prompt is COMPLIANT
when it has that format, whatever its content; the score is the compliant fraction, and
retention is that fraction after training as % of the base model's.

Each item is ``{"id", "prompt", "check"}`` with ``check`` one of :data:`CHECKS`, optionally
with an argument: ``list:3``, ``max_words:5``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mixsd.errors import RecordError
from mixsd.evaluation.qa import QAResult
from mixsd.generation import greedy_generate
from mixsd.prompts import PromptRenderer
from mixsd.records import read_json_objects

INSTRUCTIONS_FILE = "instructions.jsonl"
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’.-][A-Za-z0-9]+)*")
_NUMBER_ONLY = re.compile(r"^[-+]?\d[\d,]*(?:\.\d+)?$")
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S")


def _strip(text: str) -> str:
    return text.strip().strip(" \t\n.!\"'`*")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def one_word(text: str, arg: int | None = None) -> bool:
    return len(_words(_strip(text))) == 1


def number(text: str, arg: int | None = None) -> bool:
    return bool(_NUMBER_ONLY.match(_strip(text)))


def yes_no(text: str, arg: int | None = None) -> bool:
    return _strip(text).lower().rstrip(",;:") in ("yes", "no")


def as_list(text: str, arg: int | None = None) -> bool:
    """At least ``arg`` (default 2) lines that are list items (``- x``, ``* x``, ``1. x``)."""
    items = [line for line in text.splitlines() if _ITEM.match(line)]
    return len(items) >= (arg or 2)


def uppercase(text: str, arg: int | None = None) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def max_words(text: str, arg: int | None = None) -> bool:
    return 0 < len(_words(text)) <= (arg or 5)


CHECKS = {"one_word": one_word, "number": number, "yes_no": yes_no, "list": as_list,
          "uppercase": uppercase, "max_words": max_words}


def parse_check(check: str, *, where: str = "") -> tuple[str, int | None]:
    """``"list:3"`` -> ``("list", 3)``; errors name the item."""
    kind, _, arg = str(check).partition(":")
    if kind not in CHECKS:
        raise RecordError(f"unknown check {check!r}; use one of {', '.join(CHECKS)}",
                          path=where or None, field="check")
    if not arg:
        return kind, None
    try:
        return kind, int(arg)
    except ValueError:
        raise RecordError(f"check {check!r}: the argument must be an integer",
                          path=where or None, field="check") from None


def complies(text: str, check: str) -> bool:
    """Does ``text`` have the format that ``check`` asks for?"""
    kind, arg = parse_check(check)
    return CHECKS[kind](text, arg)


def read_instructions(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Probe items from a JSONL file (default: the shipped probe), validated."""
    if path is None:
        with resources.as_file(resources.files("mixsd.evaluation") / "data" /
                               INSTRUCTIONS_FILE) as file:
            return read_instructions(file)
    items = []
    for item, ctx in read_json_objects(path, allow_empty=True):
        if not isinstance(item, dict):
            raise RecordError("a probe item must be a JSON object", **ctx)
        for key in ("id", "prompt", "check"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise RecordError("missing or empty", field=key, **ctx)
        where = f"{ctx['path']}:{ctx['line']}" if "line" in ctx else ctx["path"]
        parse_check(item["check"], where=where)
        items.append(item)
    if not items:
        raise RecordError("no instruction items", path=str(path))
    return items


@dataclass
class InstructionSuite:
    """Format compliance of greedy answers to the probe's prompts."""

    name: str
    items: list[dict[str, Any]]
    max_new_tokens: int = 48
    guidance: str = "knowledge"  # only the naive layout of the preset is used
    chat: dict[str, Any] = field(default_factory=dict)  # chat settings given (QASuite.chat)

    @property
    def prompts(self) -> list[str]:
        return [item["prompt"] for item in self.items]

    def fingerprint(self) -> str:
        blob = json.dumps([[i["prompt"], i["check"]] for i in self.items]
                          + [self.max_new_tokens, self.guidance]
                          + ([self.chat] if self.chat else []), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> QAResult:
        renderer = PromptRenderer(tokenizer, self.guidance, **self.chat)
        outputs = greedy_generate(model, tokenizer, [renderer.naive_ids(p) for p in self.prompts],
                                  max_new_tokens=self.max_new_tokens,
                                  stop_token_ids=renderer.stop_ids(model), batch_size=batch_size)
        samples = []
        for item, ids in zip(self.items, outputs):
            text = renderer.decode_target(ids)
            samples.append({"id": item["id"], "prompt": item["prompt"], "check": item["check"],
                            "generation": text, "correct": complies(text, item["check"])})
        score = sum(s["correct"] for s in samples) / len(samples) if samples else 0.0
        return QAResult(name=self.name, score=score, n=len(samples), samples=samples)


def instruction_suite(name: str = "instruct", path: str | Path | None = None, *,
                      max_new_tokens: int = 48, chat: dict[str, Any] | None = None
                      ) -> InstructionSuite:
    """The shipped instruction-following probe, or one read from ``path``."""
    return InstructionSuite(name, read_instructions(path), max_new_tokens=max_new_tokens,
                            chat=dict(chat or {}))
