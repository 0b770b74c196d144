"""Word boundaries from the tokenizer, for the word and span mixing units (docs/method.md,
"Beyond the paper": mixing unit).

A token *starts a word* when the text it decodes to begins a new word: it carries the
tokenizer's own word marker (SentencePiece ``▁``, byte-level ``Ġ`` for a space, ``Ċ``/``ĉ``
for a newline or tab), begins with white space or punctuation, or is a special token. A
WordPiece continuation (``##``) and a piece that goes on with a letter or digit do not; nor
does a byte-level or byte-fallback piece that starts inside a multi-byte UTF-8 character.
In a WordLevel vocabulary every token is a word, so there the word unit draws a coin at
every token, exactly like the paper's token unit.

:func:`word_start_table` computes the answer for the whole vocabulary once per tokenizer.
"""

from __future__ import annotations

import json
import unicodedata
import weakref
from typing import Any

MIX_UNITS = ("token", "word", "span")
_BYTE_FALLBACK_LEN = len("<0x00>")
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _backend_kind(tokenizer: Any) -> tuple[str, bool]:
    """(model type of the ``tokenizers`` backend, byte-level?) — ('', False) if unknown."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return "", False
    spec = json.loads(backend.to_str())
    model = (spec.get("model") or {}).get("type", "")
    parts = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
    return model, '"ByteLevel"' in parts


def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def _starts_with_boundary_char(char: str) -> bool:
    """White space or punctuation/symbols begin a word; letters, digits and marks go on."""
    if char.isspace() or char in "▁":
        return True
    return unicodedata.category(char)[0] not in ("L", "N", "M")


def piece_starts_word(piece: str, *, byte_level: bool = False,
                      byte_decoder: dict[str, int] | None = None) -> bool:
    """Does the vocabulary piece ``piece`` (as ``convert_ids_to_tokens`` spells it) start a word?"""
    if not piece:
        return True
    if piece.startswith("##"):
        return False
    if len(piece) == _BYTE_FALLBACK_LEN and piece.startswith("<0x") and piece.endswith(">"):
        try:
            value = int(piece[3:5], 16)
        except ValueError:
            return True
        return value < 0x80 and _starts_with_boundary_char(chr(value))
    if byte_level:
        decoder = byte_decoder if byte_decoder is not None else _byte_decoder()
        first = decoder.get(piece[0])
        if first is not None:
            if first >= 0x80:  # a UTF-8 lead or continuation byte: a letter of a word, go on
                return False
            return _starts_with_boundary_char(chr(first))
    return _starts_with_boundary_char(piece[0])


def word_start_table(tokenizer: Any) -> Any:
    """A bool tensor ``[len(tokenizer)]``: True where that token starts a word (cached)."""
    import torch

    try:
        cached = _TABLES.get(tokenizer)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    size = len(tokenizer)
    model, byte_level = _backend_kind(tokenizer)
    if model == "WordLevel":
        table = torch.ones(size, dtype=torch.bool)
    else:
        decoder = _byte_decoder() if byte_level else None
        pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        table = torch.tensor([
            i in special or piece is None
            or piece_starts_word(piece, byte_level=byte_level, byte_decoder=decoder)
            for i, piece in enumerate(pieces)], dtype=torch.bool)
    try:
        _TABLES[tokenizer] = table
    except TypeError:
        pass
    return table


def word_sources(token_ids: list[int], sources: str, starts: Any) -> str:
    """One char per word of a generated sequence: ``n`` (all its tokens naive), ``e`` (all
    expert) or ``m`` (both). A word begins at the first token and at every token that
    starts a word (``starts``: :func:`word_start_table`)."""
    words: list[set[str]] = []
    flags = starts[token_ids].tolist() if token_ids else []
    for i, (flag, source) in enumerate(zip(flags, sources, strict=True)):
        if flag or i == 0:
            words.append(set())
        words[-1].add(source)
    return "".join(next(iter(w)) if len(w) == 1 else "m" for w in words)
