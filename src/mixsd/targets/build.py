"""Build supervision targets: mixing with verification and retries, or SFT's y*.

:class:`TargetBuilder` turns records into :class:`~mixsd.records.TargetRecord` objects, in
input order, as they complete. Attempts flow through ``batch_size`` slots of the fused engine
(continuous batching, :mod:`mixsd.targets.stream`): an attempt that ends is verified at once
and its slot takes the record's next attempt (reusing its prompt caches) or a new record
before the next step. A target whose extracted answer does not match the record's
``answer_key`` is regenerated with fresh coins (attempt + 1) up to ``max_retries`` times; a
record that never passes is still written, with ``verified: false`` (training leaves it out
by default). Retries are scheduled before new records so that output can be streamed in input
order. Targets depend on (seed, record id, attempt) only, never on the schedule.
With ``lambda_fallback`` (e.g. ``[0.3, 0.15, 0.0]``) a record whose attempts all fail at
``mix_lambda`` is tried again at each lower lambda in turn, so it gets its most-mixed
verified target; ``meta.lambda`` is the realised lambda. Without it (the paper's rule) a
record that never passes stays unverified. Greedy at lambda 0 (or 1) has no randomness, so it
gets one attempt, unless ``retry_temperature`` samples its retries (``meta.temperature`` is
the realised temperature).
Besides the answer key, ``verify_entities`` and ``verify_round_trip`` add the checks of
:mod:`mixsd.targets.verify`; a rejected attempt's meta names the check it failed.
"""

from __future__ import annotations

import dataclasses
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
from mixsd.targets.stream import MixStream, NotSlottable
from mixsd.targets.verify import CHECKS, entity_problem
from mixsd.targets.words import word_sources, word_start_table


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
        mix_unit=config.mix_unit,
        word_starts=word_start_table(tokenizer) if config.mix_unit != "token" else None,
    )


SCHEDULES = ("continuous", "static")


class TargetBuilder:
    """Turns records into targets for one model, tokenizer and config (see module docstring).

    After a run, ``generated_tokens`` (all attempts) and ``generate_s`` hold throughput stats,
    ``rejections`` how many attempts each check rejected, and ``round_trip_tokens`` /
    ``round_trip_s`` what the round-trip check cost.
    """

    def __init__(self, model: Any, tokenizer: Any, config: TargetsConfig,
                 schedule: str = "continuous"):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.model, self.tokenizer, self.config = model, tokenizer, config
        # continuous: batch_size slots refilled as attempts end (mixsd.targets.stream);
        # static: batches of batch_size attempts, refilled when the whole batch is done (the
        # engine before issue 25, kept for bench/mixing.py's before/after). Same targets.
        self.schedule = schedule
        self.renderer = PromptRenderer(tokenizer, config.guidance, **config.chat_options())
        self.generated_tokens = 0
        self.generate_s = 0.0
        self.rejections = dict.fromkeys(CHECKS, 0)
        self.round_trip_tokens = 0
        self.round_trip_s = 0.0

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
    def lambdas(self) -> list[float]:
        """The lambda of each fallback level: ``mix_lambda``, then ``lambda_fallback``."""
        return [self.config.mix_lambda, *self.config.lambda_fallback]

    def _deterministic(self, mix_lambda: float) -> bool:
        """Greedy at lambda 0 or 1: no coin and no sampling, every attempt the same."""
        return self.config.temperature == 0 and mix_lambda in (0.0, 1.0)

    def _max_attempts(self, mix_lambda: float | None = None) -> int:
        """Attempts at one lambda: one where nothing is random (greedy at lambda 0 or 1),
        unless ``retry_temperature`` samples the retries there."""
        cfg = self.config
        lam = cfg.mix_lambda if mix_lambda is None else mix_lambda
        if self._deterministic(lam) and not cfg.retry_temperature:
            return 1  # no randomness at all: a retry would repeat the same target
        return cfg.max_attempts

    def _temperature(self, mix_lambda: float, tries: int) -> float:
        """The temperature of a level's ``tries``-th attempt: the config's, except the
        retries at a deterministic level, sampled at ``retry_temperature``."""
        if tries > 1 and self._deterministic(mix_lambda):
            return self.config.retry_temperature
        return self.config.temperature

    def _mixed(self, records: Sequence[KnowledgeRecord]) -> Iterator[TargetRecord]:
        if self.schedule == "continuous":
            return self._mixed_continuous(records)
        return self._mixed_static(records)

    def _mixed_continuous(self, records: Sequence[KnowledgeRecord]) -> Iterator[TargetRecord]:
        """Attempts flow through ``batch_size`` slots: an attempt that ends is verified at
        once, and its slot takes the record's retry (its prompt caches kept) or the next
        record before the next step. Retries go first, so records finish near input order."""
        settings = mix_settings(self.model, self.tokenizer, self.renderer, self.config)
        stream = MixStream(self.model, settings, slots=self.config.batch_size)
        self._prompts: dict[int, tuple[list[int], list[int]]] = {}
        lambdas = self.lambdas()
        # (record index, attempt, fallback level, attempts made at that level)
        waiting: deque[tuple[int, int, int, int]] = deque()
        done: dict[int, TargetRecord] = {}
        next_new, next_out, first = 0, 0, True
        while next_out < len(records):
            while len(waiting) < stream.free_slots() and next_new < len(records):
                waiting.append((next_new, 1, 0, 1))
                next_new += 1
            admitted = [waiting.popleft() for _ in range(min(len(waiting),
                                                             stream.free_slots()))]
            start = time.perf_counter()
            try:
                ended = self._advance(stream, [(state, self._job(records, state), state[0])
                                               for state in admitted])
            except NotSlottable:
                if not first:
                    raise
                yield from self._mixed_static(records)  # a cache the slots cannot hold
                return
            first = False
            self.generate_s += time.perf_counter() - start
            self.generated_tokens += sum(len(o.sources) for _, o in ended)
            failed = self._checks(records, [(s[0], s[1]) for s, _ in ended],
                                  [o for _, o in ended], settings)
            for ((idx, attempt, level, tries), output), check in zip(ended, failed,
                                                                      strict=True):
                retry = self._retry(idx, attempt, level, tries, output, check)
                if retry is not None:
                    waiting.appendleft(retry)
                    continue
                stream.forget(idx)
                self._prompts.pop(idx, None)
                lam = lambdas[level]
                done[idx] = self._finish(records[idx], attempt, output, check, settings, lam,
                                         self._temperature(lam, tries))
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def _advance(self, stream: MixStream, items: list[tuple[Any, MixJob, int]]
                 ) -> list[tuple[Any, MixOutput]]:
        """Admit ``items`` and run one step, with the base model frozen (dropout off)."""
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                stream.admit(items)
                return stream.step()
        finally:
            self.model.train(was_training)

    def _retry(self, idx: int, attempt: int, level: int, tries: int, output: MixOutput,
               check: str | None) -> tuple[int, int, int, int] | None:
        """The next attempt of a record whose attempt ended (None: this one is final)."""
        lambdas = self.lambdas()
        exhausted = tries >= self._max_attempts(lambdas[level])
        if (check is None or output.finish_reason == PROMPT_TOO_LONG
                or (exhausted and level + 1 >= len(lambdas))):
            return None
        return (idx, attempt + 1, level + 1, 1) if exhausted else (idx, attempt + 1, level,
                                                                    tries + 1)

    def _job(self, records: Sequence[KnowledgeRecord],
             state: tuple[int, int, int, int]) -> MixJob:
        """The engine job of one attempt (its lambda and temperature on the job)."""
        idx, attempt, level, tries = state
        rec, lam = records[idx], self.lambdas()[level]
        naive, expert = self._prompts.get(idx) or self._prompts.setdefault(
            idx, (self.renderer.naive_ids(rec.prompt),
                  self.renderer.expert_ids(rec.prompt, rec.answer)))
        return MixJob(rec.id, attempt, naive, expert, reference_ids=self._reference_ids(rec),
                      mix_lambda=lam, temperature=self._temperature(lam, tries))

    def _mixed_static(self, records: Sequence[KnowledgeRecord]) -> Iterator[TargetRecord]:
        settings = mix_settings(self.model, self.tokenizer, self.renderer, self.config)
        # (record index, attempt, fallback level, attempts made at that level); the attempt
        # counts across levels, so every attempt of a record draws fresh coins.
        retries: deque[tuple[int, int, int, int]] = deque()
        prompts: dict[int, tuple[list[int], list[int]]] = {}
        done: dict[int, TargetRecord] = {}
        lambdas = self.lambdas()
        next_new, next_out = 0, 0
        while next_out < len(records):
            batch: list[tuple[int, int, int, int]] = []
            while retries and len(batch) < self.config.batch_size:
                batch.append(retries.popleft())
            while next_new < len(records) and len(batch) < self.config.batch_size:
                batch.append((next_new, 1, 0, 1))
                next_new += 1
            outputs = self._generate(records, batch, prompts, settings)
            failed = self._checks(records, [(i, a) for i, a, _, _ in batch], outputs, settings)
            for (idx, attempt, level, tries), output, check in zip(batch, outputs, failed,
                                                                    strict=True):
                lam = lambdas[level]
                last_level = level + 1 >= len(lambdas)
                exhausted = tries >= self._max_attempts(lam)
                final = (check is None or output.finish_reason == PROMPT_TOO_LONG
                         or (exhausted and last_level))
                if not final:
                    retries.append((idx, attempt + 1, level + 1, 1) if exhausted
                                   else (idx, attempt + 1, level, tries + 1))
                    continue
                done[idx] = self._finish(records[idx], attempt, output, check, settings, lam,
                                         self._temperature(lam, tries))
                prompts.pop(idx, None)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def _generate(
        self,
        records: Sequence[KnowledgeRecord],
        batch: list[tuple[int, int, int, int]],
        prompts: dict[int, tuple[list[int], list[int]]],
        settings: MixSettings,
    ) -> list[MixOutput]:
        jobs, temperatures = [], []
        lambdas = self.lambdas()
        for idx, attempt, level, tries in batch:
            rec = records[idx]
            if idx not in prompts:
                prompts[idx] = (
                    self.renderer.naive_ids(rec.prompt),
                    self.renderer.expert_ids(rec.prompt, rec.answer),
                )
            jobs.append(MixJob(rec.id, attempt, *prompts[idx],
                               reference_ids=self._reference_ids(rec),
                               mix_lambda=lambdas[level]))
            temperatures.append(self._temperature(lambdas[level], tries))
        start = time.perf_counter()
        outputs: list[MixOutput] = [None] * len(jobs)  # type: ignore[list-item]
        for temp in sorted(set(temperatures)):  # one engine call per temperature
            rows = [i for i, t in enumerate(temperatures) if t == temp]
            group = settings if temp == settings.temperature else \
                dataclasses.replace(settings, temperature=temp)
            for i, out in zip(rows, mix_generate(self.model, [jobs[i] for i in rows], group),
                              strict=True):
                outputs[i] = out
        self.generate_s += time.perf_counter() - start
        self.generated_tokens += sum(len(o.sources) for o in outputs)
        return outputs

    def _reference_ids(self, record: KnowledgeRecord) -> list[int]:
        """y*'s tokens, alone and after a space (how a target may write it); span unit only."""
        if self.config.mix_unit != "span":
            return []
        encode = self.tokenizer
        alone = encode(record.answer, add_special_tokens=False)["input_ids"]
        spaced = encode(" " + record.answer, add_special_tokens=False)["input_ids"]
        return [*alone, -1, *spaced]  # -1 separates the two: no bigram spans it

    def _checks(self, records: Sequence[KnowledgeRecord], batch: list[tuple[int, int]],
                outputs: list[MixOutput], settings: MixSettings) -> list[str | None]:
        """The first check each attempt fails (None: it passes them all)."""
        cfg = self.config
        failed: list[str | None] = []
        for (idx, _), output in zip(batch, outputs, strict=True):
            rec, text = records[idx], self.renderer.decode_target(output.token_ids)
            if output.finish_reason == PROMPT_TOO_LONG:
                failed.append(PROMPT_TOO_LONG)  # nothing was generated: no check applies
            elif not is_correct(text, rec.answer_key, cfg.extractor):
                failed.append("answer_key")
            elif cfg.verify_entities and entity_problem(text, rec) is not None:
                failed.append("entities")
            else:
                failed.append(None)
        if cfg.verify_round_trip:
            todo = [i for i, f in enumerate(failed) if f is None]
            answers = self.round_trip([
                (records[batch[i][0]], self.renderer.decode_target(outputs[i].token_ids),
                 batch[i][1]) for i in todo], settings)
            for i, answer in zip(todo, answers, strict=True):
                if not is_correct(answer, records[batch[i][0]].answer_key, cfg.extractor):
                    failed[i] = "round_trip"
        for check in failed:
            if check in self.rejections:
                self.rejections[check] += 1
        return failed

    def round_trip(self, attempts: Sequence[tuple[KnowledgeRecord, str, int]],
                   settings: MixSettings | None = None) -> list[str]:
        """The base model's greedy answers to each ``(record, target text, attempt)`` with the
        target as the reference (expert layout), through the fused engine at lambda 0."""
        if not attempts:
            return []
        settings = settings or mix_settings(self.model, self.tokenizer, self.renderer,
                                            self.config)
        jobs = []
        for rec, target, attempt in attempts:
            ids = self.renderer.expert_ids(rec.prompt, target)
            jobs.append(MixJob(f"{rec.id}#round-trip", attempt, ids, ids))
        plain = dataclasses.replace(settings, mix_lambda=0.0, temperature=0.0, mix_unit="token",
                                    word_starts=None)
        start = time.perf_counter()
        answers = mix_generate(self.model, jobs, plain)
        self.round_trip_s += time.perf_counter() - start
        self.round_trip_tokens += sum(len(a.token_ids) for a in answers)
        return [self.renderer.decode_target(a.token_ids) for a in answers]

    def _finish(self, record: KnowledgeRecord, attempt: int, output: MixOutput,
                failed_check: str | None, settings: MixSettings,
                mix_lambda: float, temperature: float) -> TargetRecord:
        """The final target of a record: its last attempt, made at ``mix_lambda`` (the
        realised lambda: lower than the config's after a fallback)."""
        cfg = self.config
        text = self.renderer.decode_target(output.token_ids)
        verified = failed_check is None
        meta = {
            "method": "mixsd",
            "lambda": mix_lambda,
            "temperature": temperature,
            "top_k": cfg.top_k,
            "seed": cfg.seed,
            "attempts": attempt,
            "verified": verified,
            "finish_reason": output.finish_reason,
            "num_tokens": len(output.token_ids),
            "naive_token_fraction": round(output.naive_token_fraction, 6),
            "sources": output.sources,
        }
        if cfg.lambda_fallback:
            meta["lambda_requested"] = cfg.mix_lambda
            meta["fallback_level"] = self.lambdas().index(mix_lambda)
        if cfg.mix_unit != "token":
            meta["mix_unit"] = cfg.mix_unit
            meta["word_sources"] = word_sources(output.token_ids, output.sources,
                                                settings.word_starts)
        if not verified:
            meta["failed_check"] = failed_check
            if failed_check == "entities":
                meta["entity_problem"] = entity_problem(text, record)
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
