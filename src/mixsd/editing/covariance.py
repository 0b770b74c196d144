"""Generic text, context prefixes and the key covariance C of MEMIT, cached on disk.

C = E[k k^T] is the (uncentred) second moment of a layer's down-projection inputs over
generic text: what the layer already stores and an edit should leave alone. Without a hub
the text comes from what the project has (issue 16):

* a registered text source (``text_sources`` of :mod:`mixsd.registry`; a plug-in's, e.g. the
  documents a world's model was pretrained on, drawn with a seed pretraining never used);
* ``generations``: the model's own text: greedy continuations of held-out prompts, then
  sampled continuations of MEMIT's seed words until there are enough.

C is cached in ``$MIXSD_HOME/memit-cov/`` under the model's weight fingerprint, the layer
and the text source, so every later edit of the same model reuses it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mixsd.artifacts import fingerprint
from mixsd.editing.locate import capture_inputs, down_proj
from mixsd.generation import pad_token_id, right_pad
from mixsd.io import mixsd_home

CACHE_FORMAT = 1
SEED_WORDS = ("The", "Therefore", "Because", "I", "You")  # MEMIT's context-prefix seeds


def model_fingerprint(model: Any) -> str:
    """sha256 of every parameter's name, dtype, shape and bytes: a new weight, a new C."""
    import torch

    digest = hashlib.sha256()
    for name, param in model.state_dict().items():
        tensor = param.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def sample_texts(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int,
                 seed: int, greedy: bool = False, batch_size: int = 16) -> list[str]:
    """The model's own continuations of ``prompts`` (prompt included), seeded."""
    import torch

    from mixsd.generation import left_pad

    device = next(model.parameters()).device
    pad = pad_token_id(tokenizer)
    texts: list[str] = []
    torch.manual_seed(seed)
    for start in range(0, len(prompts), batch_size):
        rows = [list(tokenizer(p)["input_ids"]) for p in prompts[start:start + batch_size]]
        ids, mask = left_pad(rows, pad)
        options = ({"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
                   if greedy else {"do_sample": True, "top_k": 50, "temperature": 1.0})
        with torch.no_grad():
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=max_new_tokens, pad_token_id=pad, **options)
        texts += tokenizer.batch_decode(gen, skip_special_tokens=True)
    return [t.strip() for t in texts]


def generation_texts(model: Any, tokenizer: Any, n: int, seed: int, max_tokens: int,
                     held_out: Sequence[str] = ()) -> list[str]:
    """Greedy continuations of held-out prompts, then sampled ones of the seed words."""
    from mixsd.evaluation.drift import NEUTRAL_PROMPTS

    prompts = list(held_out or NEUTRAL_PROMPTS)[:n]
    texts = sample_texts(model, tokenizer, prompts, max_new_tokens=max_tokens, seed=seed,
                         greedy=True)
    seeds = [SEED_WORDS[i % len(SEED_WORDS)] for i in range(n - len(texts))]
    return texts + sample_texts(model, tokenizer, seeds, max_new_tokens=max_tokens, seed=seed)


def generation_prefixes(model: Any, tokenizer: Any, n: int, words: int, seed: int) -> list[str]:
    """MEMIT's context prefixes: short sampled continuations of its seed words."""
    seeds = [SEED_WORDS[i % len(SEED_WORDS)] for i in range(n)]
    texts = sample_texts(model, tokenizer, seeds, max_new_tokens=2 * words, seed=seed + 1)
    return [" ".join(t.split()[:words]) + "." for t in texts]


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_path(weights: str, layer: int, source: str, n_texts: int, max_tokens: int,
               seed: int) -> Path:
    """The file of one layer's C: the model's weights (:func:`model_fingerprint`), the
    layer, and the fingerprint (:func:`mixsd.artifacts.fingerprint`, the one every cache
    uses) of the texts it is estimated on; the names caches were written under before."""
    tag = fingerprint([CACHE_FORMAT, source, n_texts, max_tokens, seed])[:12]
    return mixsd_home() / "memit-cov" / f"{weights[:16]}-L{layer}-{source}-{tag}.pt"


def second_moments(model: Any, tokenizer: Any, texts: Sequence[str], layers: Sequence[int], *,
                   max_tokens: int, batch_size: int) -> dict[int, Any]:
    """E[k k^T] of each layer's down-projection input over every token of ``texts``
    (float64, one pass for all layers)."""
    import torch

    device = next(model.parameters()).device
    modules = {layer: down_proj(model, layer) for layer in layers}
    sums = {layer: None for layer in layers}
    count = 0
    pad = pad_token_id(tokenizer)
    rows = [list(tokenizer(t)["input_ids"])[:max_tokens] for t in texts]
    for start in tqdm(range(0, len(rows), batch_size), desc="memit covariance", leave=False):
        ids, mask = right_pad(rows[start:start + batch_size], pad, device)
        with torch.no_grad(), capture_inputs(modules) as seen:
            model(input_ids=ids, attention_mask=mask)
        keep = mask.reshape(-1).bool()
        count += int(keep.sum())
        for layer in layers:
            keys = seen[layer].reshape(-1, seen[layer].shape[-1])[keep].double()
            outer = keys.T @ keys
            sums[layer] = outer if sums[layer] is None else sums[layer] + outer
    return {layer: (sums[layer] / count).cpu() for layer in layers}


@dataclass(frozen=True)
class CovarianceTexts:
    """Which generic texts a covariance is measured on (with the model and the layer, its
    cache key): ``n_texts`` texts of ``source`` drawn with ``seed``, cut at ``max_tokens``."""

    source: str
    n_texts: int
    max_tokens: int
    seed: int


def key_covariances(model: Any, tokenizer: Any, layers: Sequence[int], on: CovarianceTexts,
                    texts: Any, *, batch_size: int, use_cache: bool = True) -> dict[int, Any]:
    """C of each layer, from the cache when present; ``texts`` is a callable returning the
    generic texts ``on`` describes, called only when some layer is missing."""
    import torch

    weights = model_fingerprint(model)
    source, n_texts, max_tokens = on.source, on.n_texts, on.max_tokens
    paths = {layer: cache_path(weights, layer, source, n_texts, max_tokens, on.seed)
             for layer in layers}
    found = {layer: torch.load(p, map_location="cpu")["moment"] for layer, p in paths.items()
             if use_cache and p.exists()}
    missing = [layer for layer in layers if layer not in found]
    if missing:
        computed = second_moments(model, tokenizer, texts(), missing, max_tokens=max_tokens,
                                  batch_size=batch_size)
        for layer, moment in computed.items():
            if use_cache:
                _atomic_torch_save({"moment": moment, "layer": layer, "source": source,
                                    "n_texts": n_texts, "fingerprint": weights},
                                   paths[layer])
            found[layer] = moment
    return found
