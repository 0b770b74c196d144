"""Helpers of the training tests (importable by name from test modules)."""

from __future__ import annotations

FACTS = [
    ("where lives alice ?", "alice lives in paris"),
    ("where lives bob ?", "bob lives in oslo"),
    ("where lives carol ?", "carol lives in lima"),
    ("where lives dave ?", "dave lives in rome"),
    ("where lives erin ?", "erin lives in tulsa"),
    ("what color is the city ?", "the city is red"),
]


def target_rows(n=6, unverified=(), guidance=None):
    """Target JSONL rows written by hand: record fields + target + meta."""
    rows = []
    for i in range(n):
        prompt, answer = FACTS[i % len(FACTS)]
        meta = {"method": "sft", "verified": i not in unverified}
        if guidance:
            meta["guidance"] = guidance
        rows.append({"id": f"t{i}", "prompt": prompt, "answer": answer,
                     "answer_key": answer.split()[-1], "target": answer, "meta": meta})
    return rows
