"""Generic text of the toy world for MEMIT's key covariance (the ``toy`` text source)."""

from __future__ import annotations

from mixsd.toyworld.suites import get_world

DOCUMENT_SEED = 1_000_003  # never a pretraining seed of the toy world


def toy_texts(n: int, seed: int) -> list[str]:
    """``n`` documents of the toy world's pretraining mixture."""
    docs = get_world().documents(DOCUMENT_SEED + seed)
    return [next(docs) for _ in range(n)]


def toy_prefixes(n: int, words: int, seed: int) -> list[str]:
    """Statements of the toy world (the first sentence of its non-question documents), the
    kind of text an in-context toy prompt carries before its question."""
    docs = get_world().documents(DOCUMENT_SEED + 7919 + seed)
    out: list[str] = []
    while len(out) < n:
        doc = next(docs)
        if not doc.startswith("Q "):
            out.append(" ".join(doc.split(" . ")[0].split()[:words]) + " .")
    return out
