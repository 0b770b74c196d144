"""Export a targets folder for other trainers: TRL's dataset formats and chat ``messages``.

``targets.jsonl`` rows (record + ``target`` + ``meta``) are mixsd's own; a trainer such as
TRL's ``SFTTrainer``, axolotl or NeMo-RL reads one of the field's standard formats instead.
Only VERIFIED targets are exported (what ``mixsd train`` trains on by default), each with the
naive prompt x that MixSD trains on, rendered by the one :class:`~mixsd.prompts.PromptRenderer`
with the folder's guidance and chat convention:

``trl``
    prompt/completion. With a chat template, conversational: ``{"prompt": [system?, user],
    "completion": [assistant]}`` plus ``chat_template_kwargs`` when the convention has any
    (TRL passes a row's ``chat_template_kwargs`` to the template: Qwen3's
    ``enable_thinking: false``); without one, plain text ``{"prompt": x, "completion": y}``
    (TRL appends the EOS, as mixsd closes a target with it).
``messages``
    one conversation per target, ``{"messages": [system?, user, assistant]}`` (plus
    ``chat_template_kwargs``), the chat format axolotl's ``chat_template`` datasets and
    NeMo-RL's SFT read.

Files go to ``DIR/export/FORMAT.jsonl``, written atomically; ``mixsd targets --export trl``
writes them once the targets are complete (also for a folder completed before).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError

EXPORT_FORMATS = ("trl", "messages")
EXPORT_DIR = "export"


def export_rows(targets: list[Any], renderer: Any, fmt: str) -> list[dict[str, Any]]:
    """The rows of format ``fmt`` (:data:`EXPORT_FORMATS`) for the verified ``targets``
    (:class:`~mixsd.records.TargetRecord`), prompts rendered by ``renderer``."""
    if fmt not in EXPORT_FORMATS:
        raise MixsdError(f"export must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r} "
                         "(flag --export)")
    extra = {"chat_template_kwargs": dict(renderer.chat.template_kwargs)} \
        if renderer.use_chat_template and renderer.chat.template_kwargs else {}
    rows = []
    for item in targets:
        if not item.verified:
            continue
        prompt = item.record.prompt
        answer = {"role": "assistant", "content": item.target}
        if fmt == "messages":
            rows.append({"messages": [*renderer.naive_messages(prompt), answer], **extra})
        elif renderer.use_chat_template:
            rows.append({"prompt": renderer.naive_messages(prompt), "completion": [answer],
                         **extra})
        else:
            rows.append({"prompt": renderer.naive_text(prompt), "completion": item.target})
    return rows


def export_targets(folder: str | Path, formats: list[str] | tuple[str, ...], tokenizer: Any, *,
                   guidance: str = "knowledge", chat: dict[str, Any] | None = None
                   ) -> dict[str, Path]:
    """Write ``FOLDER/export/FORMAT.jsonl`` for each of ``formats`` from the folder's
    targets (``guidance`` and ``chat`` as the targets were built with); return
    ``{format: path}``."""
    from mixsd.io import atomic_write_text, dumps_line
    from mixsd.prompts import PromptRenderer
    from mixsd.records import read_targets

    folder = Path(folder)
    targets = read_targets(folder)
    renderer = PromptRenderer(tokenizer, guidance, **(chat or {}))
    written = {}
    for fmt in dict.fromkeys(formats):
        rows = export_rows(targets, renderer, fmt)
        if not rows:
            raise MixsdError(f"{folder}: no verified targets to export")
        path = folder / EXPORT_DIR / f"{fmt}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(dumps_line(row) + "\n" for row in rows))
        written[fmt] = path
    return written
