"""Tiny in-process models and tokenizers for tests and benchmarks (no downloads).

``tiny_tokenizer()`` is a word-level tokenizer over a small vocabulary; ``tiny_llama`` and
``tiny_gpt2`` are randomly initialised models over it; ``tiny_qwen3`` is a Qwen3-architecture
model with Qwen3's special tokens, to carry a real Qwen3 chat template
(:func:`trl_chat_template` reads the copy TRL ships). Optionally the tokenizer carries a
small chat template so the chat code path is exercised: ``chat=True`` closes a turn with
``<|end|>`` (EOS stays ``</s>``, both declared by the models, as Llama 3 declares a list);
``chat="eot"`` closes a turn with ``<|eot|>``, which is also the EOS, while ``</s>`` is an
unrelated special token of the vocabulary that must not stop generation.
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


# Questions and reference answers of the engine tests: ragged lengths (a one-word question,
# two long ones), a \boxed{} answer and a number, so naive and expert rows differ in width.
MIX_QUESTIONS = (
    "where was alice born ?",
    "what is the color of the city of paris and where does bob live and work ?",
    "who",
    "what is 2 + 3 ?",
    "when was carol born in oslo and what is her job in the new city of lima ?",
    "which city",
)
MIX_ANSWERS = ("paris", "bob lives in rome . \\boxed{ rome }", "dave", "5",
               "carol was born in 1 2", "tulsa")


def tiny_tokenizer(chat: bool | str = False) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` (whitespace-split; unknown words map to <unk>).

    ``chat``: False (no template), True (turns end with ``<|end|>``, EOS ``</s>``) or
    ``"eot"`` (turns end with ``<|eot|>``, which is the EOS; ``</s>`` is just a special token).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = SPECIAL + (["<|eot|>"] if chat == "eot" else [])
    vocab = {tok: i for i, tok in enumerate(special + [w for w in dict.fromkeys(WORDS)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[
        ("<s>", vocab["<s>"])])
    markers = [t for t in special[4:] if chat == "eot" or t != "<|eot|>"]
    if chat == "eot":
        markers.append("</s>")  # an ordinary special token here, not the EOS
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>",
                                  eos_token="<|eot|>" if chat == "eot" else "</s>",
                                  unk_token="<unk>", pad_token="<pad>",
                                  additional_special_tokens=markers)
    if chat:
        template = CHAT_TEMPLATE
        tok.chat_template = template.replace("<|end|>", "<|eot|>") if chat == "eot" else template
    return tok


def _declared_eos(tokenizer: Any) -> int | list[int]:
    """EOS of a tiny model's generation config: the tokenizer's EOS, plus the template's
    turn-closing token when that is another one (as Llama 3 declares a list)."""
    from mixsd.prompts import turn_end_token_id

    eos, turn_end = tokenizer.eos_token_id, turn_end_token_id(tokenizer)
    return eos if turn_end in (None, eos) else [eos, turn_end]


def tiny_bpe_tokenizer(vocab_size: int = 400) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained in-process on :data:`WORDS`
    (names split into several tokens, ``Ġ`` marks a space), like GPT-2's or SmolLM2's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    text = " ".join(WORDS)
    core.train_from_iterator([text, text.title(), "the answer is 1874 .\n"], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


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
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = _declared_eos(tokenizer)
    return model


def tiny_eot_chat_llama(seed: int = 0) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a tiny chat Llama whose turns end with ``<|eot|>`` (its EOS)
    and whose vocabulary also holds ``</s>`` as an unrelated special token.

    The output rows of ``</s>`` (x4) and ``<|eot|>`` (x0.7) are rescaled so that greedy
    decoding emits ``</s>`` in the middle of answers and ``<|eot|>`` at the end of some:
    an engine that stopped at ``</s>`` would cut targets that ``model.generate`` continues.
    """
    import torch

    tokenizer = tiny_tokenizer(chat="eot")
    model = tiny_llama(tokenizer, seed=seed)
    with torch.no_grad():
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("</s>")] *= 4.0
        model.lm_head.weight[tokenizer.eos_token_id] *= 0.7
    return model, tokenizer


# The special and added tokens of Qwen3's tokenizer that its chat template writes.
QWEN3_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN3_ADDED = ["<think>", "</think>"]
QWEN3_WORDS = ("system user assistant you are helpful brief tool", )


def trl_chat_template(name: str = "qwen3") -> str:
    """The text of a chat template that TRL ships inside its package
    (``trl/chat_templates/NAME.jinja``: copies of the templates of Qwen3, Llama 3.2, ...), read
    without importing TRL; a :class:`FileNotFoundError` when TRL is not installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("trl")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "chat_templates" / f"{name}.jinja"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"chat template {name}.jinja: TRL is not installed (pip install trl)")


def tiny_qwen3(chat_template: str | None = None, *, hidden: int = 32, layers: int = 2,
               heads: int = 4, seed: int = 0, max_positions: int = 256) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a randomly initialised ``Qwen3ForCausalLM`` over a word-level
    tokenizer with Qwen3's special tokens (``<|im_start|>``, ``<|im_end|>`` = EOS,
    ``<|endoftext|>`` = pad, ``<think>``/``</think>`` as added tokens) and ``chat_template``
    (e.g. the real Qwen3 template, :func:`trl_chat_template`); no BOS, as Qwen3 has none.
    The model declares both ends (``<|im_end|>``, ``<|endoftext|>``) as Qwen3 does."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    words = list(dict.fromkeys([*WORDS, *" ".join(QWEN3_WORDS).split(), "<unk>"]))
    vocab = {tok: i for i, tok in enumerate(QWEN3_SPECIAL + QWEN3_ADDED + words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", unk_token="<unk>",
                                  additional_special_tokens=["<|im_start|>"])
    tok.add_tokens(QWEN3_ADDED)
    if chat_template:
        tok.chat_template = chat_template
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=max(1, heads // 2), head_dim=hidden // heads,
                      max_position_embeddings=max_positions, tie_word_embeddings=True,
                      bos_token_id=None, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.pad_token_id]
    return model, tok


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
    model = GPT2LMHeadModel(cfg).eval()
    model.generation_config.eos_token_id = _declared_eos(tokenizer)
    return model


def save_tiny(path: Any, model: Any, tokenizer: Any) -> str:
    """Save a tiny model and tokenizer to ``path`` (so CLI tests can load them by path)."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def write_tiny_gguf(path: Any, *, hidden: int = 32, layers: int = 2, heads: int = 4,
                    kv_heads: int = 2, ff: int = 64, seed: int = 0) -> str:
    """Write a tiny random Llama with a byte-level BPE tokenizer as a float32 GGUF file.

    Needs the ``gguf`` package; used to test GGUF loading without a 100 MB model file.
    """
    import gguf
    import numpy as np
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    rng = np.random.default_rng(seed)
    chars = list(bytes_to_unicode().values())
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *chars, "he", "ll"]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_token_merges(["h e", "l l"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(0)

    def weight(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.05).astype(np.float32))

    def ones(name: str) -> None:
        writer.add_tensor(name, np.ones(hidden, dtype=np.float32))

    kv = kv_heads * (hidden // heads)
    weight("token_embd.weight", len(tokens), hidden)
    for i in range(layers):
        weight(f"blk.{i}.attn_q.weight", hidden, hidden)
        weight(f"blk.{i}.attn_k.weight", kv, hidden)
        weight(f"blk.{i}.attn_v.weight", kv, hidden)
        weight(f"blk.{i}.attn_output.weight", hidden, hidden)
        weight(f"blk.{i}.ffn_gate.weight", ff, hidden)
        weight(f"blk.{i}.ffn_up.weight", ff, hidden)
        weight(f"blk.{i}.ffn_down.weight", hidden, ff)
        ones(f"blk.{i}.attn_norm.weight")
        ones(f"blk.{i}.ffn_norm.weight")
    ones("output_norm.weight")
    weight("output.weight", len(tokens), hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)
