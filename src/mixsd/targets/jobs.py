"""What the MixSD engines share: a job (one attempt of one record), the settings, an output,
the per-job draws and the end of a token stream. The static fused loop
(:mod:`mixsd.targets.engine`) and the slot engine (:mod:`mixsd.targets.stream`) both build on
these, so neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mixsd.targets.sampling import record_draws

STOP, MAX_LENGTH, PROMPT_TOO_LONG = "stop", "max_length", "prompt_too_long"


@dataclass(frozen=True)
class MixJob:
    """One generation: a record's attempt, with its naive and expert prompt ids."""

    record_id: str
    attempt: int
    naive_ids: Sequence[int]
    expert_ids: Sequence[int]
    # Token ids of the reference answer y* (for the span unit; empty otherwise).
    reference_ids: Sequence[int] = ()
    # This job's lambda (the lambda fallback retries a record at a lower one); None: the
    # settings' mix_lambda.
    mix_lambda: float | None = None
    # This job's temperature (retries at a deterministic level may sample); None: the
    # settings' temperature. Only the continuous engine (:mod:`mixsd.targets.stream`) reads
    # it; the static loop takes one temperature per call.
    temperature: float | None = None

    def lambda_of(self, settings: MixSettings) -> float:
        """The probability of the naive token for this job."""
        return settings.mix_lambda if self.mix_lambda is None else self.mix_lambda


@dataclass(frozen=True)
class MixSettings:
    """The mixing rule and the limits of one engine call."""

    mix_lambda: float
    temperature: float = 0.0
    top_k: int = 64
    max_new_tokens: int = 256
    seed: int = 0
    stop_token_ids: frozenset[int] = field(default_factory=frozenset)
    pad_id: int = 0
    context_length: int | None = None
    # False keeps finished rows in the batch (their tokens are ignored); only for measuring
    # what dropping them saves (bench/mixing.py).
    drop_finished: bool = True
    # The mixing unit (token, word, span; see the module docstring) and, for word and span,
    # the tokenizer's bool "starts a word" table over its vocabulary.
    mix_unit: str = "token"
    word_starts: Any = field(default=None, compare=False)

    def starts_word(self, token: int) -> bool:
        """Does ``token`` start a word? (Ids beyond the tokenizer's table do.)"""
        table = self.word_starts
        return table is None or token >= len(table) or bool(table[token])

    def token_budget(self, job: MixJob) -> int:
        """Most tokens ``job`` may produce: max_new_tokens, or fewer at the context limit.

        Producing token t needs a forward over ``len(prompt) + t`` positions, so a prompt of
        length L leaves room for ``context_length - L + 1`` tokens (0 = prompt_too_long).
        """
        if self.context_length is None:
            return self.max_new_tokens
        longest = max(len(job.naive_ids), len(job.expert_ids))
        return max(0, min(self.max_new_tokens, self.context_length - longest + 1))


@dataclass
class MixOutput:
    """A generated sequence (stop token excluded) and which conditional made each token."""

    token_ids: list[int]
    sources: str  # one char per token: 'n' naive, 'e' expert
    finish_reason: str

    @property
    def naive_token_fraction(self) -> float:
        return self.sources.count("n") / len(self.sources) if self.sources else 0.0


def job_draws(job: MixJob, settings: MixSettings) -> Any:
    """The ``[max_new_tokens, 2]`` uniforms of one job (see :mod:`mixsd.targets.sampling`)."""
    return record_draws(settings.seed, job.record_id, job.attempt, settings.max_new_tokens)


def reference_bigrams(job: MixJob) -> set[tuple[int, int]]:
    """The pairs of consecutive tokens of the job's reference answer (the span unit)."""
    ids = list(job.reference_ids)
    return set(zip(ids, ids[1:]))


def finish(tokens: list[int], naive: list[bool], stops: frozenset[int], budget: int) -> MixOutput:
    """Cut a raw token stream at its first stop token (or the budget) into a MixOutput."""
    for t, tok in enumerate(tokens[:budget]):
        if tok in stops:
            return MixOutput(tokens[:t], "".join("n" if s else "e" for s in naive[:t]), STOP)
    kept = tokens[:budget]
    return MixOutput(kept, "".join("n" if s else "e" for s in naive[: len(kept)]), MAX_LENGTH)


def plain_dynamic(cache: Any) -> bool:
    """A DynamicCache of plain DynamicLayers (whose key/value tensors we may pad and join)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    layers = getattr(cache, "layers", None)
    return (
        type(cache) is DynamicCache
        and bool(layers)
        and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)
    )
