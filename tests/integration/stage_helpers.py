"""What the process-level tests of stage folders share (test_interrupts, test_stage_safety):
five people in five cities as knowledge records (their tiny model: conftest's ``model_dir``)."""

from __future__ import annotations

NAMES = ["alice", "bob", "carol", "dave", "erin"]
CITIES = ["paris", "oslo", "tulsa", "lima", "rome"]


def records(n: int) -> list[dict]:
    """``n`` records "where lives NAME ?" -> "NAME lives in CITY" (cycling the five)."""
    return [{"id": f"r{i}", "prompt": f"where lives {NAMES[i % 5]} ?",
             "answer": f"{NAMES[i % 5]} lives in {CITIES[i % 5]}", "answer_key": CITIES[i % 5]}
            for i in range(n)]
