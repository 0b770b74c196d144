"""Word boundaries from the tokenizer (targets/words.py)."""

from __future__ import annotations

import pytest
import torch

from mixsd.targets.words import piece_starts_word, word_sources, word_start_table
from mixsd.testing import tiny_bpe_tokenizer, tiny_tokenizer


@pytest.mark.parametrize("piece, byte_level, starts", [
    ("▁Paris", False, True),   # SentencePiece word marker
    ("aris", False, False),
    ("1", False, False),       # a digit goes on (1874 is one word)
    (".", False, True),        # punctuation begins a word
    ("{", False, True),
    ("##ing", False, False),   # WordPiece continuation
    ("<0x0A>", False, True),   # byte fallback: a newline
    ("<0xC3>", False, False),  # byte fallback: inside a multi-byte character
    ("Ġ", True, True),         # byte-level space
    ("ĠMar", True, True),
    ("Ċ", True, True),         # byte-level newline
    ("indel", True, False),
    ("Å¡", True, False),        # byte-level bytes of a non-ASCII letter (š)
    ("Ġ?", True, True),
    ("?", True, True),
])
def test_piece_starts_word(piece, byte_level, starts):
    assert piece_starts_word(piece, byte_level=byte_level) is starts


def test_word_level_vocabulary_is_all_words():
    tok = tiny_tokenizer()
    table = word_start_table(tok)
    assert table.dtype == torch.bool and len(table) == len(tok) and bool(table.all())
    assert word_start_table(tok) is table  # computed once per tokenizer


def test_byte_level_table_follows_the_pieces():
    tok = tiny_bpe_tokenizer()
    table = word_start_table(tok)
    ids = tok("where was Alice born in 1874 ? Paris", add_special_tokens=False)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert len(ids) > len("where was Alice born in 1874 ? Paris".split())  # multi-token words
    for i, piece in zip(ids, pieces, strict=True):
        assert bool(table[i]) == (piece.startswith("Ġ") or piece == "?"), piece
    assert all(bool(table[i]) for i in tok.all_special_ids)
    # decoding the tokens that start words gives one word each
    starts = [k for k, i in enumerate(ids) if table[i]]
    words = [tok.decode(ids[a:b]).strip() for a, b in zip([0, *starts], [*starts, len(ids)])]
    assert words == "where was Alice born in 1874 ? Paris".split()


def test_word_sources():
    starts = torch.tensor([True, False, True, False])
    assert word_sources([0, 1, 1, 2, 3], "nnnee", starts) == "ne"
    assert word_sources([1, 1, 2, 3, 0], "nenne", starts) == "mne"
    assert word_sources([], "", starts) == ""
