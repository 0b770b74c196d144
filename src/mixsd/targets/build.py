"""Build supervision targets: mixing with verification and retries, or SFT's y*.

:class:`TargetBuilder` turns records into :class:`~mixsd.records.TargetRecord` objects, in
input order, as they complete. Records advance ``batch_size`` at a time through the fused
engine; a target whose extracted answer does not match the record's ``answer_key`` is
regenerated with fresh coins (attempt + 1) up to ``max_retries`` times; a record that never
passes is still written, with ``verified: false`` (training leaves it out by default).
Retries are scheduled before new records so that output can be streamed in input order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm

from mixsd.answers import is_correct
from mixsd.errors import ConfigError
from mixsd.models import context_length
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord, TargetRecord
from mixsd.targets.config import TargetsConfig
from mixsd.targets.engine import PROMPT_TOO_LONG, STOP, MixJob, MixOutput, MixSettings, mix_generate


def stop_token_ids(renderer: PromptRenderer, extra_tokens: Iterable[str] = (),
                   model: Any = None) -> frozenset[int]:
    """The stops the model declares (:meth:`PromptRenderer.stop_ids`) plus extra stop tokens
    named by their text."""
    vocab = renderer.tokenizer.get_vocab()
    stops = set(renderer.stop_ids(model))
    for token in extra_tokens:
        if token not in vocab:
            raise ConfigError(
                f"stop token {token!r} is not in the tokenizer's vocabulary (flag --stop-tokens)"
            )
        stops.add(int(vocab[token]))
    return frozenset(stops)


def mix_settings(
    model: Any, tokenizer: Any, renderer: PromptRenderer, config: TargetsConfig
) -> MixSettings:
    """The engine settings of ``config`` for this model and tokenizer."""
    stops = stop_token_ids(renderer, config.stop_tokens, model)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return MixSettings(
        mix_lambda=config.mix_lambda,
        temperature=config.temperature,
        top_k=config.top_k,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        stop_token_ids=stops,
        pad_id=int(pad_id),
        context_length=context_length(model),
    )


class TargetBuilder:
    """Turns records into targets for one model, tokenizer and config (see module docstring).

    After a run, ``generated_tokens`` (all attempts) and ``generate_s`` hold throughput stats.
    """

    def __init__(self, model: Any, tokenizer: Any, config: TargetsConfig):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.renderer = PromptRenderer(tokenizer, config.guidance)
        self.generated_tokens = 0
        self.generate_s = 0.0

    # -- the entry point -------------------------------------------------------------
    def iter_targets(
        self, records: Sequence[KnowledgeRecord], *, desc: str | None = None
    ) -> Iterator[TargetRecord]:
        """Yield one target per record, in input order, as soon as it and all before it are done."""
        bar = tqdm(
            total=len(records),
            desc=desc or "targets",
            unit="record",
            leave=False,
            disable=not (self.config.progress and desc is not None),
        )
        try:
            if self.config.method == "sft":
                for record in records:
                    yield self.sft_target(record)
                    bar.update(1)
            else:
                for target in self._mixed(records):
                    yield target
                    bar.update(1)
        finally:
            bar.close()

    # -- sft ---------------------------------------------------------------------------
    def sft_target(self, record: KnowledgeRecord) -> TargetRecord:
        """y* itself, in the same format (sources are empty: no conditional made it)."""
        cfg = self.config
        n_tokens = len(self.tokenizer(record.answer, add_special_tokens=False)["input_ids"])
        meta = {
            "method": "sft",
            "lambda": None,
            "temperature": None,
            "top_k": None,
            "seed": cfg.seed,
            "attempts": 1,
            "verified": is_correct(record.answer, record.answer_key, cfg.extractor),
            "finish_reason": STOP,
            "num_tokens": n_tokens,
            "naive_token_fraction": None,
            "sources": "",
        }
        return TargetRecord(record, record.answer, meta)

    # -- mixsd -------------------------------------------------------------------------
    def _max_attempts(self) -> int:
        cfg = self.config
        if cfg.temperature == 0 and cfg.mix_lambda in (0.0, 1.0):
            return 1  # no randomness at all: a retry would repeat the same target
        return cfg.max_attempts

    def _mixed(self, records: Sequence[KnowledgeRecord]) -> Iterator[TargetRecord]:
        settings = mix_settings(self.model, self.tokenizer, self.renderer, self.config)
        retries: deque[tuple[int, int]] = deque()
        prompts: dict[int, tuple[list[int], list[int]]] = {}
        done: dict[int, TargetRecord] = {}
        next_new, next_out = 0, 0
        while next_out < len(records):
            batch: list[tuple[int, int]] = []
            while retries and len(batch) < self.config.batch_size:
                batch.append(retries.popleft())
            while next_new < len(records) and len(batch) < self.config.batch_size:
                batch.append((next_new, 1))
                next_new += 1
            outputs = self._generate(records, batch, prompts, settings)
            for (idx, attempt), output in zip(batch, outputs, strict=True):
                target = self._finish(records[idx], attempt, output)
                if target is None:
                    retries.append((idx, attempt + 1))
                else:
                    done[idx] = target
                    prompts.pop(idx, None)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def _generate(
        self,
        records: Sequence[KnowledgeRecord],
        batch: list[tuple[int, int]],
        prompts: dict[int, tuple[list[int], list[int]]],
        settings: MixSettings,
    ) -> list[MixOutput]:
        jobs = []
        for idx, attempt in batch:
            rec = records[idx]
            if idx not in prompts:
                prompts[idx] = (
                    self.renderer.naive_ids(rec.prompt),
                    self.renderer.expert_ids(rec.prompt, rec.answer),
                )
            jobs.append(MixJob(rec.id, attempt, *prompts[idx]))
        start = time.perf_counter()
        outputs = mix_generate(self.model, jobs, settings)
        self.generate_s += time.perf_counter() - start
        self.generated_tokens += sum(len(o.sources) for o in outputs)
        return outputs

    def _finish(
        self, record: KnowledgeRecord, attempt: int, output: MixOutput
    ) -> TargetRecord | None:
        """The final target of this attempt, or None when it should be retried."""
        cfg = self.config
        text = self.renderer.decode_target(output.token_ids)
        too_long = output.finish_reason == PROMPT_TOO_LONG
        verified = not too_long and is_correct(text, record.answer_key, cfg.extractor)
        if not (verified or too_long or attempt >= self._max_attempts()):
            return None
        meta = {
            "method": "mixsd",
            "lambda": cfg.mix_lambda,
            "temperature": cfg.temperature,
            "top_k": cfg.top_k,
            "seed": cfg.seed,
            "attempts": attempt,
            "verified": verified,
            "finish_reason": output.finish_reason,
            "num_tokens": len(output.token_ids),
            "naive_token_fraction": round(output.naive_token_fraction, 6),
            "sources": output.sources,
        }
        return TargetRecord(record, text, meta)


def build_targets(
    model: Any,
    tokenizer: Any,
    records: Sequence[KnowledgeRecord],
    config: TargetsConfig | None = None,
) -> list[TargetRecord]:
    """Targets for ``records`` (input order) from a loaded model and tokenizer.

    Example::

        model, tok = load_model_and_tokenizer("toy")
        targets = build_targets(model, tok, read_records("facts.jsonl"),
                                TargetsConfig(mix_lambda=0.3))
    """
    config = config or TargetsConfig()
    return list(TargetBuilder(model, tokenizer, config).iter_targets(records))
