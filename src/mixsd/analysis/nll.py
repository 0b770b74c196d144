"""Target NLL: how likely each method's targets are under the BASE model (docs/method.md, "Why it works").

For every target y of a file, the base model scores exactly the training tokens:
``PromptRenderer.training_example(prompt, y)`` (naive prompt x, target ids closed by the end
token). The file's mean NLL per token is token-weighted: the sum of ``-log p0(y_t | x, y_<t)``
over all its targets divided by their total token count. MixSD targets should be far more
likely than the reference answers y* (an SFT targets file, or a records file, whose ``answer``
is used as the target).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.artifacts import KeyedCache
from mixsd.errors import MixsdError, RecordError
from mixsd.evaluation.loglik import continuation_logprobs
from mixsd.generation import pad_token_id
from mixsd.io import file_sha256
from mixsd.prompts import PromptRenderer
from mixsd.records import read_records, read_targets, targets_file, targets_name


@dataclass
class NLLResult:
    """Mean per-token NLL of one set of targets, and each target's own mean (for histograms)."""

    name: str
    mean_nll: float
    n_targets: int
    n_tokens: int
    per_target: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mean_nll": self.mean_nll, "n_targets": self.n_targets,
                "n_tokens": self.n_tokens}


def load_pairs(path: str | Path, *, include_unverified: bool = False) -> list[tuple[str, str]]:
    """``(prompt, target)`` pairs of a targets file; a records file gives ``(prompt, answer)``.

    Unverified targets are left out by default: training never sees them.
    """
    try:
        targets = read_targets(path)
    except RecordError as exc:
        if exc.field != "target":
            raise
        return [(r.prompt, r.answer) for r in read_records(path)]
    pairs = [(t.record.prompt, t.target) for t in targets if include_unverified or t.verified]
    if not pairs:
        raise MixsdError(f"{path}: no verified targets to score (use include_unverified)")
    return pairs


def target_nll(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], *,
               guidance: str = "knowledge", batch_size: int = 8, name: str = "targets",
               renderer: PromptRenderer | None = None) -> NLLResult:
    """Mean per-token NLL (nats) of ``(prompt, target)`` pairs given the naive prompt."""
    renderer = renderer or PromptRenderer(tokenizer, guidance)
    examples = [renderer.training_example(p, t) for p, t in pairs]
    pad = pad_token_id(tokenizer)
    logprobs = continuation_logprobs(model, examples, batch_size=batch_size, pad_id=pad,
                                     desc=f"nll {name}" if len(examples) > 64 else None)
    per_target = [-sum(lp) / len(lp) for lp in logprobs if lp]
    n_tokens = sum(len(lp) for lp in logprobs)
    total = -sum(sum(lp) for lp in logprobs)
    mean = total / n_tokens if n_tokens else math.nan
    return NLLResult(name=name, mean_nll=mean, n_targets=len(per_target), n_tokens=n_tokens,
                     per_target=per_target)


def nll_of_files(model: Any, tokenizer: Any, paths: Sequence[str | Path], *,
                 guidance: str = "knowledge", batch_size: int = 8,
                 include_unverified: bool = False) -> dict[str, NLLResult]:
    """:func:`target_nll` of every file, keyed by the path as given."""
    return {str(p): target_nll(model, tokenizer,
                               load_pairs(p, include_unverified=include_unverified),
                               guidance=guidance, batch_size=batch_size, name=str(p))
            for p in paths}



@dataclass(frozen=True)
class NLLSettings:
    """How targets are scored: the guidance and chat settings of the naive prompt (renderer
    keywords), whether unverified targets count, and the batch size (which decides nothing)."""

    guidance: str = "knowledge"
    include_unverified: bool = False
    batch_size: int = 8
    chat: dict[str, Any] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        return {"guidance": self.guidance, "chat": dict(self.chat),
                "include_unverified": self.include_unverified}


def cached_target_nlls(cache: str | Path, files: Sequence[str | Path], model: Any, tokenizer: Any,
                       settings: NLLSettings = NLLSettings(),
                       model_fields: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Mean per-token NLL of each targets folder or file under ``model``, by its name
    (:func:`mixsd.records.targets_name`: ``LABEL-sSEED`` for ``LABEL-sSEED/`` and for an old
    ``LABEL-sSEED.jsonl``).

    Kept in the :class:`mixsd.artifacts.KeyedCache` ``cache`` (a comparison's
    ``OUT/analysis/nll.json``) under the fingerprint of what decides the value
    (:func:`nll_fields`): the targets file's bytes, the model (``model_fields``: its id and
    loading options) and the scoring ``settings``. Entries of a file written before the key
    (a bare ``{name: nll}``) are never trusted: a name alone does not say which targets or
    model made them, so they are scored again."""
    store = KeyedCache(cache)
    out = {}
    for file in dict.fromkeys(Path(f) for f in files):
        name = targets_name(file)

        def score(file: Path = file, name: str = name) -> dict[str, Any]:
            pairs = load_pairs(file, include_unverified=settings.include_unverified)
            renderer = PromptRenderer(tokenizer, settings.guidance, **settings.chat)
            return {"name": name, "mean_nll": target_nll(
                model, tokenizer, pairs, batch_size=settings.batch_size, name=name,
                renderer=renderer).mean_nll}

        out[name] = store.get_or_compute(nll_fields(file, model_fields, settings), score)[
            "mean_nll"]
    return out


def nll_fields(path: str | Path, model_fields: Mapping[str, Any] | None,
               settings: NLLSettings) -> dict[str, Any]:
    """What decides a targets file's NLL under a model (its key in ``nll.json``)."""
    return {"targets_sha256": file_sha256(targets_file(path)), "model": dict(model_fields or {}),
            **settings.key()}


def plot_nll_histogram(results: dict[str, NLLResult], out_path: str | Path) -> Path:
    """Overlaid histograms of per-target mean NLL, one per file, with each file's mean marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    values = [v for r in results.values() for v in r.per_target]
    bins = 30 if values else 1
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    for i, (name, res) in enumerate(results.items()):
        color = f"C{i % 10}"
        ax.hist(res.per_target, bins=bins, range=(lo, hi + 1e-9), alpha=0.45, color=color,
                label=f"{Path(name).name} (mean {res.mean_nll:.3f})")
        ax.axvline(res.mean_nll, color=color, linestyle="--", linewidth=1)
    ax.set_xlabel("mean NLL per token under the base model (nats)")
    ax.set_ylabel("targets")
    ax.set_title("Target NLL given the naive prompt")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
