"""The knowledge record: one schema for the whole library, JSONL/JSON read and write.

A record is ``(id, prompt x, answer y*, answer_key)`` plus optional ``subject``,
``paraphrases``, ``split`` and ``metadata`` (docs/method.md, "The method"). Readers accept three
shapes, detected per record:

* ours: ``{"id", "prompt", "answer", "answer_key", ...}``;
* chat (the paper authors' format): ``{"messages": [user, assistant], "clear_answer": ...}``;
* TRL prompt/completion: ``{"prompt": ..., "completion": ..., "answer_key"?: ...}``.

Bad input raises :class:`~mixsd.errors.RecordError` naming file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import RecordError
from mixsd.io import atomic_write_jsonl

RECORD_FIELDS = ("id", "prompt", "answer", "answer_key", "subject", "paraphrases", "split",
                 "metadata")
TARGET_FIELDS = ("target", "meta")


@dataclass
class KnowledgeRecord:
    """One fact to inject: a question ``prompt`` (x), its reference ``answer`` (y*) and the
    short ``answer_key`` that verifies a generated answer."""

    id: str
    prompt: str
    answer: str
    answer_key: str
    subject: str | None = None
    paraphrases: list[str] = field(default_factory=list)
    split: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: v for k, v in out.items() if v not in (None, [], {}) or k in RECORD_FIELDS[:4]}


@dataclass
class TargetRecord:
    """A record with its supervision ``target`` and the ``meta`` that says how it was made."""

    record: KnowledgeRecord
    target: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.meta.get("verified", True))

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "target": self.target, "meta": self.meta}


# -- parsing ----------------------------------------------------------------------------
def _text(obj: dict, key: str, ctx: dict, *, required: bool = True, empty_ok: bool = False):
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError("missing required field", field=key, **ctx)
        return None
    if not isinstance(value, str):
        raise RecordError(f"must be a string, got {type(value).__name__}", field=key, **ctx)
    if not empty_ok and not value.strip():
        raise RecordError("must not be empty", field=key, **ctx)
    return value


def _message_text(content: Any, key: str, ctx: dict) -> str:
    """Content of a chat message: a string, or a list of ``{"type": "text", "text": ...}``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise RecordError("message content must be a string", field=key, **ctx)


def _conversation(value: Any, role: str, key: str, ctx: dict) -> str:
    """The text of a prompt/completion that may be a string or a list of chat messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for i, msg in enumerate(value):
            if not isinstance(msg, dict) or "content" not in msg:
                raise RecordError("each message must be an object with 'content'",
                                  field=f"{key}[{i}]", **ctx)
        picked = [m for m in value if m.get("role", role) == role] or value
        return _message_text(picked[-1]["content"], key, ctx)
    raise RecordError(f"must be a string or a list of messages, got {type(value).__name__}",
                      field=key, **ctx)


def _from_chat(obj: dict, ctx: dict) -> dict:
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise RecordError("must be a non-empty list of messages", field="messages", **ctx)
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise RecordError("each message needs 'role' and 'content'", field=f"messages[{i}]",
                              **ctx)
    users = [m for m in messages if m["role"] == "user"]
    assistants = [m for m in messages if m["role"] == "assistant"]
    if not users:
        raise RecordError("no user message", field="messages", **ctx)
    if not assistants:
        raise RecordError("no assistant message", field="messages", **ctx)
    key = obj.get("answer_key", obj.get("clear_answer"))
    if key is None:
        raise RecordError("missing required field (chat records carry it as 'clear_answer')",
                          field="clear_answer", **ctx)
    rest = {k: v for k, v in obj.items() if k not in ("messages", "clear_answer")}
    return {**rest, "prompt": _message_text(users[-1]["content"], "messages", ctx),
            "answer": _message_text(assistants[-1]["content"], "messages", ctx),
            "answer_key": key if not isinstance(key, (int, float)) else str(key)}


def _from_trl(obj: dict, ctx: dict) -> dict:
    prompt = _conversation(obj["prompt"], "user", "prompt", ctx)
    answer = _conversation(obj["completion"], "assistant", "completion", ctx)
    key = obj.get("answer_key")
    if key is None:
        from mixsd.answers import extract_boxed

        key = extract_boxed(answer)
        if key is None:
            raise RecordError("missing; a prompt/completion record needs 'answer_key' or a "
                              "\\boxed{} answer in its completion", field="answer_key", **ctx)
    rest = {k: v for k, v in obj.items() if k not in ("completion",)}
    return {**rest, "prompt": prompt, "answer": answer, "answer_key": key}


def parse_record(obj: Any, ctx: dict, default_id: str) -> KnowledgeRecord:
    """Validate one decoded JSON object and return the record (any accepted shape)."""
    if not isinstance(obj, dict):
        raise RecordError(f"a record must be a JSON object, got {type(obj).__name__}", **ctx)
    if "messages" in obj:
        obj = _from_chat(obj, ctx)
    elif "completion" in obj:
        obj = _from_trl(obj, ctx)
    if isinstance(obj.get("answer_key"), (int, float)) and not isinstance(obj["answer_key"], bool):
        obj = {**obj, "answer_key": str(obj["answer_key"])}
    rid = obj.get("id", default_id)
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid.strip():
        raise RecordError("must be a non-empty string", field="id", **ctx)
    paraphrases = obj.get("paraphrases") or []
    if not isinstance(paraphrases, list) or not all(isinstance(p, str) for p in paraphrases):
        raise RecordError("must be a list of strings", field="paraphrases", **ctx)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("must be an object", field="metadata", **ctx)
    # Keys we do not know are kept, not dropped: they travel in metadata.
    extra = {k: v for k, v in obj.items() if k not in RECORD_FIELDS and k not in TARGET_FIELDS}
    return KnowledgeRecord(
        id=rid,
        prompt=_text(obj, "prompt", ctx),
        answer=_text(obj, "answer", ctx),
        answer_key=_text(obj, "answer_key", ctx),
        subject=_text(obj, "subject", ctx, required=False, empty_ok=True),
        paraphrases=list(paraphrases),
        split=_text(obj, "split", ctx, required=False, empty_ok=True),
        metadata={**extra, **metadata},
    )


class _NotANumber(ValueError):
    """``NaN``/``Infinity`` in a JSON text (``json.loads`` accepts them; JSON has none)."""


def _no_constant(name: str) -> Any:
    raise _NotANumber(name)


def _strict_loads(text: str, ctx: dict) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON: they
    would travel into targets and configs as numbers no check catches), naming the field."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except _NotANumber as exc:
        import re

        found = re.search(r'"((?:[^"\\]|\\.)*)"\s*:\s*' + re.escape(str(exc)), text)
        raise RecordError(f"{exc} is not a JSON number (JSON has no NaN or infinity)",
                          field=found.group(1) if found else None, **ctx) from None


def read_json_objects(path: str | Path, *, allow_empty: bool = False, strict: bool = True
                      ) -> Iterator[tuple[Any, dict]]:
    """Yield ``(decoded object, error context)`` from a JSONL file or a JSON array file.

    The one JSON/JSONL reader: records, targets, multiple-choice items, probe items, corpus
    sources and sample logs all read through it. A leading UTF-8 byte-order mark is skipped
    (spreadsheet exports). Errors are :class:`~mixsd.errors.RecordError` naming the file and the
    line (or record); ``context`` is that location, for the caller's own field errors. A file
    with no objects is an error unless ``allow_empty``. ``NaN`` and ``Infinity`` (which
    Python's ``json`` accepts) are an error naming the field unless ``strict=False`` (logs
    mixsd wrote itself before it wrote strict JSON).
    """
    loads = _strict_loads if strict else (lambda text, ctx: json.loads(text))
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecordError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise RecordError("is a directory, expected a JSONL or JSON file", path=str(path)) from None
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        if allow_empty:
            return
        raise RecordError("the file is empty: no records to read", path=str(path))
    stripped = raw.lstrip()
    if stripped.startswith(b"["):
        try:
            data = loads(raw.decode("utf-8"), {"path": str(path)})
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise RecordError("invalid UTF-8 bytes", path=str(path), line=line) from None
        except json.JSONDecodeError as exc:
            raise RecordError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
        for i, obj in enumerate(data):
            yield obj, {"path": f"{path} record {i + 1}"}
        return
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        ctx = {"path": str(path), "line": lineno}
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("invalid UTF-8 bytes", **ctx) from None
        try:
            obj = loads(text, ctx)
        except json.JSONDecodeError as exc:
            raise RecordError(f"invalid JSON: {exc.msg} (column {exc.colno})", **ctx) from None
        yield obj, ctx


def read_records(path: str | Path) -> list[KnowledgeRecord]:
    """Read knowledge records; every bad record stops the read with file, line and field."""
    path = Path(path)
    records: list[KnowledgeRecord] = []
    seen: dict[str, Any] = {}
    for obj, ctx in read_json_objects(path):
        rec = parse_record(obj, ctx, default_id=f"{path.stem}-{len(records) + 1}")
        if rec.id in seen:
            raise RecordError(f"duplicate id {rec.id!r} (first seen at line {seen[rec.id]})",
                              field="id", **ctx)
        seen[rec.id] = ctx.get("line", ctx["path"])
        records.append(rec)
    return records


TARGETS_FILE = "targets.jsonl"


def targets_file(path: str | Path) -> Path:
    """The JSONL file of a targets path: ``DIR/targets.jsonl`` for a targets folder (what
    ``mixsd targets --out DIR`` writes), the path itself for a single file (the layout
    before targets became folders, still read everywhere). A folder whose ``run.json`` says
    its run is not complete (still going, or cut) is refused, naming it."""
    from mixsd.artifacts import require_complete

    path = Path(path)
    if not path.is_dir():
        return path
    require_complete(path, "targets folder", "finish it first: re-run the `mixsd targets` "
                     "command that made it (it resumes)")
    return path / TARGETS_FILE


def targets_name(path: str | Path) -> str:
    """The name of a targets path: a folder's name, a single file's stem (``LABEL-sSEED``
    either way: the key of its target NLL)."""
    path = Path(path)
    if path.is_dir():
        return path.name
    return path.stem if path.is_file() or path.suffix == ".jsonl" else path.name


def read_targets(path: str | Path) -> list[TargetRecord]:
    """Read targets (records plus ``target`` and ``meta``): a targets folder or a file
    (:func:`targets_file`)."""
    name, path = targets_name(path), targets_file(path)
    out: list[TargetRecord] = []
    seen: set[str] = set()
    for obj, ctx in read_json_objects(path):
        rec = parse_record(obj, ctx, default_id=f"{name}-{len(out) + 1}")
        if rec.id in seen:
            raise RecordError(f"duplicate id {rec.id!r}", field="id", **ctx)
        seen.add(rec.id)
        target = _text(obj, "target", ctx, empty_ok=True)
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise RecordError("must be an object", field="meta", **ctx)
        out.append(TargetRecord(rec, target, meta))
    return out


def write_records(path: str | Path, records: Iterable[KnowledgeRecord | TargetRecord]) -> Path:
    """Write records (or target records) as JSONL, atomically."""
    return atomic_write_jsonl(path, (r.to_dict() for r in records))
