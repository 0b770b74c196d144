"""Where MEMIT reads and writes: the edited modules, the subject's last token, and hooks.

MEMIT (Meng et al., 2022) treats the MLP down-projection of a middle layer as a linear
key-value memory: its input at the subject's last token is the key of a fact, its output
the value. These helpers find that module on any decoder with gated MLPs
(``model.model.layers[i].mlp.down_proj``: Llama, Qwen2/3, SmolLM2, the toy model), find the
subject's last token in a rendered prompt, and read or shift activations there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from mixsd.errors import MixsdError


def decoder_layers(model: Any) -> Any:
    """The decoder's list of layers (``model.model.layers``)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise MixsdError(f"MEMIT edits decoders laid out as model.model.layers[i].mlp.down_proj "
                         f"(Llama, Qwen, SmolLM2, the toy model); {type(model).__name__} is "
                         "not one")
    return layers


def down_proj(model: Any, layer: int) -> Any:
    """The MLP down-projection of decoder layer ``layer`` (the edited weight)."""
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise MixsdError(f"layer {layer} is out of range: the model has {len(layers)} layers "
                         "(flag --layers)")
    module = getattr(getattr(layers[layer], "mlp", None), "down_proj", None)
    if module is None or not hasattr(module, "weight"):
        raise MixsdError(f"layer {layer} of {type(model).__name__} has no mlp.down_proj: MEMIT "
                         "here edits gated MLPs (gate/up/down projections) only")
    return module


def default_layers(n_layers: int) -> list[int]:
    """The lower-middle fifth of the stack, as MEMIT's layers 3-8 of GPT-J's 28: layers
    ``n/10 .. n/10 + n/5 - 1`` (at least one; layer 0 of a 2-layer model)."""
    start = n_layers // 10
    return list(range(start, start + max(1, n_layers // 5)))


def _find_span(text: str, subject: str) -> tuple[int, int] | None:
    """Character span of the LAST occurrence of ``subject`` (exact, else case-insensitive):
    the one nearest to where the model answers, after any prefix."""
    start = text.rfind(subject)
    if start < 0:
        start = text.lower().rfind(subject.lower())
    return None if start < 0 else (start, start + len(subject))


def _search_ids(ids: Sequence[int], tokenizer: Any, subject: str) -> int | None:
    """Fallback without offsets: the last token of the last occurrence of the subject's ids
    (encoded alone and after a space, as BPE vocabularies write a word inside a text)."""
    for variant in (" " + subject, subject):
        sub = list(tokenizer(variant, add_special_tokens=False)["input_ids"])
        for start in range(len(ids) - len(sub), -1, -1):
            if sub and list(ids[start:start + len(sub)]) == sub:
                return start + len(sub) - 1
    return None


def subject_last_token(tokenizer: Any, text: str, subject: str, *, add_special_tokens: bool,
                       record_id: str) -> tuple[list[int], int]:
    """``(token ids of text, index of the subject's last token)``.

    Uses the tokenizer's character offsets when it has them (fast tokenizers), else searches
    the subject's token ids; an error names the record when the subject is not in the text.
    """
    if not subject or not subject.strip():
        raise MixsdError(f"record {record_id!r} has no subject: MEMIT needs the entity whose "
                         "fact is edited (field 'subject')")
    span = _find_span(text, subject.strip())
    if span is None:
        raise MixsdError(f"record {record_id!r}: its subject {subject!r} does not occur in the "
                         f"prompt {text!r}")
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < span[1] and b > span[0]]
        if inside:
            return ids, inside[-1]
    ids = list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
    found = _search_ids(ids, tokenizer, subject.strip())
    if found is None:
        raise MixsdError(f"record {record_id!r}: the tokens of its subject {subject!r} were not "
                         f"found in the tokens of the prompt {text!r}")
    return ids, found


@contextlib.contextmanager
def capture_inputs(modules: dict[int, Any]) -> Iterator[dict[int, Any]]:
    """Record the input of each module (``{layer: tensor [batch, seq, d_in]}``) while active."""
    seen: dict[int, Any] = {}
    handles = [m.register_forward_pre_hook(
        lambda _m, args, layer=layer: seen.__setitem__(layer, args[0])) for layer, m in
        modules.items()]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def capture_output(module: Any) -> Iterator[dict[str, Any]]:
    """Record a decoder layer's output hidden states (``seen["out"]``) while active."""
    seen: dict[str, Any] = {}

    def hook(_m: Any, _args: Any, output: Any) -> None:
        seen["out"] = output[0] if isinstance(output, tuple) else output

    handle = module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@contextlib.contextmanager
def add_at_positions(module: Any, delta: Any, rows: Sequence[int], positions: Sequence[int]
                     ) -> Iterator[None]:
    """Add ``delta`` to a decoder layer's output at ``(rows[i], positions[i])`` while active."""
    def hook(_m: Any, _args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        hidden[list(rows), list(positions)] += delta.to(hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
