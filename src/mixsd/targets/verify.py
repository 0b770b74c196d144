"""Checks a mixed target must pass besides the answer key (docs/method.md, "Beyond the paper").

* answer key — the paper's check: the extracted answer equals the record's ``answer_key``.
* entities (``verify_entities``) — the target keeps the names the record gives: every name
  the record names (its ``subject`` and the names its question keeps in every paraphrase)
  that y* contains must appear in the target, and every name the target writes (a
  capitalised word that does not begin a sentence) must occur in the record (question,
  paraphrases, y*, subject, key). A renamed subject or an invented place is rejected.
* round trip (``verify_round_trip``) — the target is read back: the base model gets the
  target as the reference in the expert layout (x, guidance prefix, TARGET, guidance suffix)
  and answers greedily; the target passes only if that answer carries the key. It is run
  by :class:`~mixsd.targets.build.TargetBuilder` through the fused engine at lambda 0.

A rejected attempt's ``meta.failed_check`` names the first check it failed.
"""

from __future__ import annotations

import re

from mixsd.answers import contains_phrase, normalize_answer
from mixsd.records import KnowledgeRecord

CHECKS = ("answer_key", "entities", "round_trip")

_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_SENTENCE_START = set(".!?:;{([\"'*#>`|-\n")
_NAME_RUN = re.compile(r"[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)*")


def _begins_sentence(text: str, start: int) -> bool:
    before = text[:start]
    stripped = before.rstrip(" \t")
    return not stripped or stripped[-1] in _SENTENCE_START or "\n" in before[len(stripped):]


def written_names(text: str) -> list[str]:
    """Capitalised words of ``text`` that do not begin a sentence (the names it writes)."""
    return [m.group(0) for m in _WORD.finditer(text)
            if len(m.group(0)) > 1 and m.group(0)[0].isupper()
            and not _begins_sentence(text, m.start())]


def record_names(record: KnowledgeRecord) -> list[str]:
    """The names a record gives: its subject and the capitalised runs of its question that
    every paraphrase keeps (paraphrase-stable names)."""
    names = [record.subject] if record.subject else []
    for match in _NAME_RUN.finditer(record.prompt):
        run = match.group(0)
        words = run.split()
        if _begins_sentence(record.prompt, match.start()):
            words = words[1:]  # "Where", "In" ... open the question, they are no names
        run = " ".join(words)
        if run and all(contains_phrase(p, run) for p in record.paraphrases):
            names.append(run)
    return list(dict.fromkeys(names))


def entity_problem(target: str, record: KnowledgeRecord) -> str | None:
    """Why ``target`` is not entity-safe for ``record`` (None when it is)."""
    for name in record_names(record):
        if contains_phrase(record.answer, name) and not contains_phrase(target, name):
            return f"missing {name!r}"
    known = " ".join([record.prompt, *record.paraphrases, record.answer, record.subject or "",
                      record.answer_key])
    known_words = set(normalize_answer(known).split())
    for name in written_names(target):
        if not set(normalize_answer(name).split()) <= known_words:
            return f"foreign {name!r}"
    return None
