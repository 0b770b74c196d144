"""Tiny in-process models and tokenizers for tests and benchmarks (no downloads).

``tiny_tokenizer()`` is a word-level tokenizer over a small vocabulary; ``tiny_llama`` and
``tiny_gpt2`` are randomly initialised models over it. Optionally the tokenizer carries a
small chat template so the chat code path is exercised.
"""

from __future__ import annotations

from typing import Any

WORDS = (
    "the a is was in of to and what where who when which how answer question new knowledge "
    "base here this now within boxed reference solution problem please step by put your final "
    "alice bob carol dave erin paris oslo tulsa lima rome born lives works city job color red "
    "blue green 0 1 2 3 4 5 6 7 8 9 + = ? . , : { } \\ q a"
).split()
SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|> {{ m['content'] }} <|end|> "
    "{% else %}<|assistant|> {{ m['content'] }} <|end|> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer(chat: bool = False) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` (whitespace-split; unknown words map to <unk>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL + [w for w in dict.fromkeys(WORDS)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[
        ("<s>", vocab["<s>"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>", pad_token="<pad>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_llama(tokenizer: Any | None = None, *, hidden: int = 32, layers: int = 2,
               heads: int = 4, seed: int = 0, max_positions: int = 256) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized for unit tests."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer or tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=max(1, heads // 2), max_position_embeddings=max_positions,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


def tiny_gpt2(tokenizer: Any | None = None, *, hidden: int = 32, layers: int = 2, heads: int = 4,
              seed: int = 0, max_positions: int = 256) -> Any:
    """A randomly initialised ``GPT2LMHeadModel`` (absolute positions) sized for unit tests."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tokenizer or tiny_tokenizer()
    cfg = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=heads,
                     n_positions=max_positions, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(cfg).eval()


def save_tiny(path: Any, model: Any, tokenizer: Any) -> str:
    """Save a tiny model and tokenizer to ``path`` (so CLI tests can load them by path)."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
