"""Loading any Hugging Face causal LM (hub id or local path) or the embedded ``toy`` model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError

TOY_MODEL = "toy"


def resolve_model_path(name_or_path: str) -> str:
    """``toy`` resolves to the cached toy world model (built on first use); others pass through."""
    if name_or_path == TOY_MODEL or name_or_path.startswith(TOY_MODEL + ":"):
        from mixsd.toyworld import ensure_toy_model

        return str(ensure_toy_model())
    return name_or_path


def resolve_device(device: str | None = None) -> Any:
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | None, device: Any) -> Any:
    """``auto`` = bf16 on a GPU that supports it, fp32 elsewhere (CPU training stays fp32)."""
    import torch

    if dtype in (None, "", "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise MixsdError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}") from None


def load_tokenizer(name_or_path: str) -> Any:
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        hint = "" if Path(path).exists() else (" (neither a local folder, nor 'toy', nor a hub id "
                                               "that could be fetched)")
        raise MixsdError(f"could not load the tokenizer of {name_or_path!r}{hint}: {exc}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model_and_tokenizer(name_or_path: str, *, device: str | None = None,
                             dtype: str | None = "auto") -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, in eval mode, on ``device``.

    ``name_or_path`` is a hub id, a local folder, or ``toy`` for the embedded default.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    tokenizer = load_tokenizer(path)
    dev = resolve_device(device)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, dev))
    except (OSError, ValueError) as exc:
        raise MixsdError(f"could not load model {name_or_path!r}: {exc}") from None
    model.to(dev).eval()
    return model, tokenizer


def context_length(model: Any) -> int | None:
    """The longest sequence the model accepts (None when the config does not say)."""
    cfg = model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
