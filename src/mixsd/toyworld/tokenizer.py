"""The toy world's word-level tokenizer (``tokenizers`` WordLevel as PreTrainedTokenizerFast).

Every word of the world, including every attribute value and every number up to 198, is one
token; text is split on white space. Plain-text prompts get ``<s>`` prepended; there is no
chat template, so :class:`~mixsd.prompts.PromptRenderer` uses the guidance formats as text.
"""

from __future__ import annotations

from typing import Any

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>"]


def build_tokenizer(vocabulary: list[str]) -> Any:
    """A ``PreTrainedTokenizerFast`` over ``vocabulary`` (special tokens first)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = SPECIAL_TOKENS + [w for w in vocabulary if w not in SPECIAL_TOKENS]
    vocab = {w: i for i, w in enumerate(words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece's decoder with a prefix no word has joins tokens with single spaces.
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>", pad_token="<pad>",
                                  model_max_length=256)
    return tok


def encode_words(vocab: dict[str, int], text: str) -> list[int]:
    """Fast path for pretraining: split on white space and look every word up (no <unk>)."""
    return [vocab[w] for w in text.split()]
