"""``mixsd inject``: teach a model new facts under a forgetting budget, in one command.

The user has a model and a file of facts and one question: give me a model that knows these
and still does what it did. The recipe puts the library's stages together (docs/method.md,
"Beyond the paper"):

1. **Probes built for the model.** The model's registered suites (the toy world's) or the
   shipped ``general`` and ``instruct``, plus the user's ``--probe`` suites, each scored on
   the base model's KNOWN set (``known:SPEC``, :class:`mixsd.evaluation.general.KnownSet`).
   The budget ``--retain R``: every probe keeps at least R of the base model's score.
2. **Targets** with the best rule measured on real models: MixSD λ 0.5 with the word rule,
   the λ fallback 0.3, 0.15, 0 (retries sampled at T 0.7 where greedy has no coin) and the
   entity check; the facts whose targets never verify are listed, not silently dropped.
3. **Training under the budget**, every epoch evaluated: a try stops when memorisation stops
   rising, reaches 100%, or a probe falls below the budget (``TrainConfig.stop_floor``); its
   epoch is the most memorised within the budget
   (:func:`mixsd.evaluation.selection.budget_pick`). A try in which no epoch within the
   budget memorises more than the base model is followed by another at half the learning
   rate, at most ``--tries`` in all, each recorded. When none succeeds the best model found
   (the epoch closest to the budget) is shipped and the summary says so.
4. **A model to ship**: ``OUT/model/`` a plain Hugging Face folder (LoRA merged unless
   ``--adapter-only``) with its model card ``README.md``; ``OUT/report.md`` with the
   per-epoch curve and the facts not learned; ``OUT/inject.json`` everything measured.

Every stage resumes: ``OUT/base.json`` (the base scores), ``OUT/targets/`` (a targets
folder), ``OUT/tries/try-K/`` (training run folders); re-running the same command finishes
what a killed one left, and a finished one returns its summary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.artifacts import COMPLETE, RUNNING, Reuse, StageDir, open_stage
from mixsd.errors import MixsdError
from mixsd.generation import pad_token_id
from mixsd.injection_config import InjectConfig, probe_specs
from mixsd.io import atomic_write_json, file_sha256, read_json_or_empty
from mixsd.records import KnowledgeRecord, write_records

__all__ = ["InjectConfig", "inject", "plan", "probe_specs"]

# Values that may change between two invocations of one injection (they decide no output).
MUTABLE = ("device", "dry_run", "quiet", "eval_batch_size")
SUMMARY = "inject.json"


# -- what every try shares ------------------------------------------------------------------
@dataclass
class Injection:
    """The facts, the base model with its probes and scores, the targets and the budget."""

    config: InjectConfig
    out: Path
    facts: dict[str, Any]  # the facts file: source, sha256, bytes, counts
    records: list[KnowledgeRecord]  # every record scored (the trained ones and eval splits)
    model: Any
    tokenizer: Any
    suites: dict[str, Any]
    base: dict[str, Any]
    floors: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # probe -> why it is not held
    targets: Path | None = None
    targets_summary: dict[str, Any] = field(default_factory=dict)
    unverified: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_memorization(self) -> float:
        return float(self.base.get("memorization") or 0.0)

    def evaluator(self, samples_dir: Path, *, against_base: bool = True) -> Any:
        from mixsd.evaluation.callback import make_epoch_evaluator

        c = self.config
        return make_epoch_evaluator(
            self.suites, self.records, extractor=c.extractor, max_new_tokens=c.max_new_tokens,
            guidance=c.resolved_guidance(), batch_size=c.eval_batch_size,
            samples_dir=samples_dir, base_scores=self.base["scores"] if against_base else None)


def load_facts(config: InjectConfig, out: Path | None) -> tuple[dict[str, Any], list, list]:
    """The facts (``load_corpus``: a file, a corpus folder or a registered name), written to
    ``OUT/train.jsonl`` (trained on) and ``OUT/facts.jsonl`` (every record scored) when
    ``out`` is given; returns (facts info, trained records, every record)."""
    from mixsd.corpora.load import load_corpus
    from mixsd.evaluation.suites import TRAIN_SPLITS

    corpus = load_corpus(config.data, model=config.model, n_facts=config.n_facts)
    corpus.records = [r for r in corpus.records
                      if r.split in TRAIN_SPLITS or r.split in config.eval_splits]
    source = Path(config.data)
    if source.is_dir():
        source = source / "train.jsonl"
    info: dict[str, Any] = {"source": config.data, "facts": len(corpus.train),
                            "records": len(corpus.records),
                            "paraphrases": sum(len(r.paraphrases) for r in corpus.train)}
    if out is not None:
        write_records(out / "train.jsonl", corpus.train)
        write_records(out / "facts.jsonl", corpus.records)
    hashed = source if source.is_file() else (out / "train.jsonl" if out else None)
    if hashed is not None:
        info.update(file=str(hashed), sha256=file_sha256(hashed), bytes=hashed.stat().st_size)
    return info, corpus.train, corpus.records


def build_probes(config: InjectConfig, model: Any, tokenizer: Any) -> tuple[dict, dict]:
    """The probes, held to the base model's known sets; returns (suites, their info)."""
    from mixsd.evaluation.general import prepare_suites
    from mixsd.evaluation.retention import fingerprint_path
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import resolve_model_path

    suites = get_suites(config.probe_specs(), **config.eval.plugin_options(),
                        guidance=config.resolved_guidance(), extractor=config.extractor)
    info = prepare_suites(suites, model, tokenizer, batch_size=config.eval_batch_size,
                          model_fingerprint=fingerprint_path(resolve_model_path(config.model)))
    return suites, info


def base_fields(config: InjectConfig, facts: dict[str, Any]) -> dict[str, Any]:
    """What decides the base scores (their key in ``OUT/base.json``)."""
    return {"model": config.model, "facts": facts.get("sha256"), "n_facts": config.n_facts,
            "eval_splits": config.eval_splits,
            "probes": config.probe_specs(), **config.eval.composite_options(),
            "guidance": config.resolved_guidance(), "extractor": config.extractor,
            "max_new_tokens": config.max_new_tokens}


def hold_probes(job: Injection) -> None:
    """Set the budget: ``retained/PROBE`` >= 100 R for every probe the base model scores
    above 0 on; a probe it knows nothing of holds no retention and is dropped, with why."""
    for name in list(job.suites):
        base = job.base["scores"].get(name)
        if not base:
            job.dropped[name] = "the base model answers none of its items"
            del job.suites[name]
    if not job.suites:
        raise MixsdError("no probe holds a budget: the base model answers none of the items "
                         f"of {', '.join(job.dropped)}; pass another --probe")
    job.floors = {f"retained/{name}": 100.0 * job.config.retain for name in job.suites}


def build_targets(job: Injection, bar: Any) -> None:
    """MixSD targets of the facts (``OUT/targets/``, resumable); the unverified listed."""
    from mixsd.records import read_targets
    from mixsd.targets import run_targets

    bar.start("targets")
    job.targets = job.out / "targets"
    job.targets_summary = run_targets(job.config.targets_config(), job.out / "train.jsonl",
                                      job.targets, model=job.model, tokenizer=job.tokenizer)
    job.unverified = [{"id": t.record.id, "prompt": t.record.prompt,
                       "answer_key": t.record.answer_key, "target": t.target,
                       "failed_check": t.meta.get("failed_check")}
                      for t in read_targets(job.targets) if not t.verified]


def prepare(config: InjectConfig, out: Path, bar: Any) -> Injection:
    """Everything the tries share: facts, base model, probes and base scores (cached in
    ``OUT/base.json``), the budget and the targets."""
    from mixsd.evaluation.base import evaluate_base
    from mixsd.models import load_model_and_tokenizer

    bar.start("base model")
    facts, _, records = load_facts(config, out)
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device)
    suites, info = build_probes(config, model, tokenizer)
    job = Injection(config, out, facts, records, model, tokenizer, suites, base={})
    job.base = evaluate_base(out, model, tokenizer,
                             job.evaluator(out / "base_samples", against_base=False), info,
                             key=base_fields(config, facts))
    hold_probes(job)
    build_targets(job, bar)
    return job


# -- the tries ------------------------------------------------------------------------------
def stop_reason(rows: list[dict[str, Any]], config: InjectConfig,
                floors: dict[str, float]) -> str:
    """Why a try ended, from its epochs."""
    from mixsd.evaluation.selection import below

    last = rows[-1]
    low = [k.partition("/")[2] for k, v in floors.items()
           if isinstance(last.get(k), (int, float)) and below(last[k], v)]
    if low:
        return f"below the budget at epoch {last['epoch']} ({', '.join(low)})"
    if (last.get("memorization") or 0.0) >= 1.0:
        return "every fact memorised"
    if len(rows) < config.epochs:
        return f"memorisation stopped rising ({config.patience} epochs without a new best)"
    return f"the last epoch ({config.epochs})"


def run_try(job: Injection, number: int, lr: float, bar: Any) -> dict[str, Any]:
    """Train one try (``OUT/tries/try-K/``, resumable) and pick its epoch under the budget."""
    from mixsd.evaluation.selection import budget_pick, shortfall
    from mixsd.training import read_metrics, train
    from mixsd.training.run import recorded_train_seconds

    run_dir = job.out / "tries" / f"try-{number}"
    cfg = job.config.train_config(run_dir, job.targets, lr, job.base_memorization, job.floors)
    evaluator = job.evaluator(run_dir / "samples")
    bar.start(f"try {number} lr={lr:g}")

    def callback(model: Any, tokenizer: Any, epoch: int) -> dict[str, float]:
        bar.epoch(epoch)
        return evaluator(model, tokenizer, epoch)

    train(cfg, epoch_callback=callback)
    rows = read_metrics(run_dir)
    for row in rows:
        row["within_budget"] = shortfall(row, job.floors) == 0.0
    index, met = budget_pick(rows, job.floors, floor=job.base_memorization)
    bar.done()
    return {"try": number, "lr": lr, "run_dir": str(run_dir), "epochs": rows,
            "selected_epoch": int(rows[index]["epoch"]), "met": met,
            "stopped": stop_reason(rows, job.config, job.floors),
            "train_s": round(recorded_train_seconds(run_dir), 3),
            "eval_s": round(sum(float(r.get("eval_s") or 0.0) for r in rows), 3)}


def train_tries(job: Injection, bar: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tries at halving learning rates until one meets the budget; returns them and the
    chosen ``{"try", "epoch", "met", "row"}`` (the best of all when none met it)."""
    from mixsd.evaluation.selection import budget_pick

    tries: list[dict[str, Any]] = []
    for number, lr in enumerate(job.config.lrs(), start=1):
        tries.append(run_try(job, number, lr, bar))
        if tries[-1]["met"]:
            break
    rows = [(t, row) for t in tries for row in t["epochs"]]
    index, met = budget_pick([row for _, row in rows], job.floors,
                             floor=job.base_memorization)
    chosen, row = rows[index]
    return tries, {"try": chosen["try"], "lr": chosen["lr"], "epoch": int(row["epoch"]),
                   "met": met, "row": row}


# -- the model to ship ----------------------------------------------------------------------
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def write_model(job: Injection, checkpoint: Path, folder: Path) -> Path:
    """``folder``: the chosen checkpoint as a plain Hugging Face folder (a LoRA adapter
    merged, or alone with ``adapter_only``), with the tokenizer, written atomically."""
    import shutil

    from mixsd.io import atomic_output
    from mixsd.training.checkpoints import load_checkpoint_model

    with atomic_output(folder, directory=True) as tmp:
        if job.config.adapter_only:
            for name in ADAPTER_FILES:
                if (checkpoint / name).is_file():
                    shutil.copy2(checkpoint / name, tmp / name)
        else:
            model = load_checkpoint_model(checkpoint, device="cpu", dtype="float32",
                                          merge=True)
            model.save_pretrained(tmp)
            del model
        job.tokenizer.save_pretrained(tmp)
    return folder


def eval_command(job: Injection, model_dir: Path) -> str:
    """The ``mixsd eval`` command that measures again what the card states (the probes on
    the base model's known sets, memorisation and paraphrase recall of the facts)."""
    facts = job.out / "facts.jsonl"
    c = job.config
    suites = [*c.probe_specs(), f"records:{facts}"]
    if job.base.get("paraphrase") is not None:
        suites.append(f"paraphrase:{facts}")
    items = "".join(f" --{k.replace('_', '-')} {v}" for k, v in c.eval.changed_options().items())
    return (f"mixsd eval --model {model_dir} --base-model {c.model} --suite {','.join(suites)} "
            f"--guidance {c.resolved_guidance()} --extractor {c.extractor} --max-new-tokens "
            f"{c.max_new_tokens} --batch-size {c.eval_batch_size}{items} "
            f"--out {job.out / 'eval'}")


def summarize(job: Injection, tries: list[dict[str, Any]], chosen: dict[str, Any],
              wall_s: float) -> dict[str, Any]:
    """``OUT/inject.json``: everything the card, the report and the README section show."""
    from mixsd.io import folder_bytes, versions
    from mixsd.models import resolve_model_path

    row = chosen["row"]
    c = job.config
    probes = {name: {"base": job.base["scores"].get(name),
                     "score": row.get(f"score/{name}"), "retained": row.get(f"retained/{name}"),
                     **((job.base.get("suite_info") or {}).get(name) or {})}
              for name in job.suites}
    model_dir = job.out / "model"
    return {
        "schema": "mixsd.inject/1", "model": c.model, "model_path": resolve_model_path(c.model),
        "config": c.to_dict(), "versions": versions(), "facts": job.facts,
        "retain": c.retain, "budget_met": chosen["met"],
        "selected": {k: chosen[k] for k in ("try", "lr", "epoch")},
        "memorization": row.get("memorization"), "paraphrase": row.get("paraphrase"),
        "base": {"memorization": job.base.get("memorization"),
                 "paraphrase": job.base.get("paraphrase"), "scores": job.base["scores"]},
        "probes": probes, "dropped_probes": job.dropped,
        "targets": {**{k: job.targets_summary.get(k) for k in
                       ("records", "verified", "unverified", "wall_s", "realised_lambda")},
                    "rule": f"mixsd λ {c.targets.mix_lambda:g} ({c.targets.mix_unit} rule), fallback "
                            f"{', '.join(f'{x:g}' for x in c.targets_config().lambda_fallback)}"},
        "unverified": job.unverified, "not_learned": not_learned(job, chosen),
        "tries": tries,
        "cost": {"wall_s": round(wall_s, 3), "targets_s": job.targets_summary.get("wall_s"),
                 "train_s": round(sum(t["train_s"] for t in tries), 3),
                 "eval_s": round(sum(t["eval_s"] for t in tries), 3),
                 "model_bytes": folder_bytes(model_dir) if model_dir.exists() else None,
                 "device": str(next(job.model.parameters()).device)},
        "eval_command": eval_command(job, model_dir),
    }


def not_learned(job: Injection, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """The facts the chosen epoch answers wrong (its memorisation sample log)."""
    from mixsd.evaluation.samples import read_sample_log

    samples_dir = job.out / "tries" / f"try-{chosen['try']}" / "samples"
    samples = read_sample_log(samples_dir, "memorization", chosen["epoch"]) or []
    return [{k: s.get(k) for k in ("id", "prompt", "answer_key", "generation")}
            for s in samples if not s.get("correct")]


def finish(job: Injection, tries: list[dict[str, Any]], chosen: dict[str, Any],
           start: float) -> dict[str, Any]:
    """Write the model with its card, the report and ``inject.json``."""
    from mixsd.io import atomic_write_text
    from mixsd.report.inject import model_card, write_inject_report

    checkpoint = Path(tries[chosen["try"] - 1]["run_dir"]) / f"epoch-{chosen['epoch']}"
    write_model(job, checkpoint, job.out / "model")
    summary = summarize(job, tries, chosen, time.perf_counter() - start)
    atomic_write_text(job.out / "model" / "README.md", model_card(summary))
    write_inject_report(summary, job.out)
    atomic_write_json(job.out / SUMMARY, summary)
    return summary


def open_out(config: InjectConfig) -> StageDir:
    """Open ``OUT`` (:func:`mixsd.artifacts.open_stage`): the same command resumes, other
    values are refused naming them."""
    return open_stage(Path(config.out), "injection", config.to_dict(),
                      reuse=Reuse(mutable=MUTABLE))


def inject(config: InjectConfig) -> dict[str, Any]:
    """Teach ``config.model`` the facts of ``config.data`` under the budget
    ``config.retain``; returns the summary (``OUT/inject.json``). With ``dry_run``, the plan
    (:func:`plan`) instead, and nothing is written."""
    from mixsd.console import GridBar, quiet_console

    if config.dry_run:
        return plan(config)
    out = Path(config.out)
    stage = open_out(config)
    if stage.complete and (out / SUMMARY).is_file() and (out / "model").is_dir():
        return {**read_json_or_empty(out / SUMMARY), "already_complete": True}
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with quiet_console(out / "log.txt", config.quiet) as terminal:
        stage.write_info(config, status=RUNNING)
        bar = GridBar(total=config.tries, file=terminal, desc="inject")
        try:
            job = prepare(config, out, bar)
            tries, chosen = train_tries(job, bar)
            bar.start("model and card")
            summary = finish(job, tries, chosen, start)
        finally:
            bar.close()
        stage.write_info(config, status=COMPLETE, wall_s=summary["cost"]["wall_s"],
                         budget_met=summary["budget_met"])
    return summary


# -- the plan (--dry-run) -------------------------------------------------------------------
def plan(config: InjectConfig) -> dict[str, Any]:
    """What an injection would do and an estimate of its minutes, from a timed forward pass
    of a training batch and a timed greedy generation; trains and writes nothing."""
    from mixsd.evaluation.general import suite_items
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer

    facts, train, records = load_facts(config, None)
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device)
    suites = get_suites(config.probe_specs(), **config.eval.plugin_options(),
                        guidance=config.resolved_guidance(), extractor=config.extractor)
    probes = {name: len(suite_items(getattr(s, "suite", s))) for name, s in suites.items()}
    forward_s, token_s = timed_passes(config, model, tokenizer, train)
    # Generated answers of one evaluation: every record scored (the facts and their eval
    # splits), the facts' paraphrases, the probes' items.
    answers = len(records) + facts["paraphrases"] + sum(probes.values())
    gen_batches = math.ceil(answers / config.eval_batch_size)
    eval_s = gen_batches * config.max_new_tokens * token_s
    epoch_s = 3 * forward_s * math.ceil(len(train) / config.train.batch_size) + eval_s
    # Targets: a naive and an expert row per record, two attempts on average assumed.
    targets_s = 2 * 2 * math.ceil(len(train) / config.eval_batch_size) \
        * config.max_new_tokens * token_s
    first = 2 * eval_s + targets_s + config.epochs * epoch_s  # base: known sets + scores
    return {"dry_run": True, "model": config.model, "facts": facts, "probes": probes,
            "retain": config.retain, "lrs": config.lrs(), "epochs": config.epochs,
            "patience": config.patience, "tries": config.tries,
            "targets": config.targets_config().to_dict(), "lora": config.train.lora,
            "forward_s": forward_s, "token_s": token_s,
            "minutes": {"base": 2 * eval_s / 60, "targets": targets_s / 60,
                        "epoch": epoch_s / 60, "first_try": first / 60,
                        "all_tries": (first + (config.tries - 1) * config.epochs * epoch_s)
                        / 60}}


def timed_passes(config: InjectConfig, model: Any, tokenizer: Any,
                 train: list[KnowledgeRecord]) -> tuple[float, float]:
    """Seconds of one forward pass of a training batch (prompt and answer), and of one
    generated token for a batch of evaluation prompts (a one-position forward pass of the
    batch; attention over the cache is left out); each the fastest of three after a
    warm-up."""
    import torch

    from mixsd.generation import pad_batch
    from mixsd.prompts import PromptRenderer

    renderer = PromptRenderer(tokenizer, config.resolved_guidance())
    device = next(model.parameters()).device
    rows = [sum(renderer.training_example(r.prompt, r.answer), [])
            for r in train[:config.train.batch_size]]
    step = [renderer.naive_ids(r.prompt)[-1:] for r in train]
    step = (step * math.ceil(config.eval_batch_size / len(step)))[:config.eval_batch_size]
    timings = []
    with torch.no_grad():
        for batch, side in ((rows, "right"), (step, "left")):
            ids, mask = pad_batch(batch, pad_token_id(tokenizer), side=side, device=device)
            seconds = []
            for _ in range(4):  # the first is a warm-up
                begin = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                seconds.append(time.perf_counter() - begin)
            timings.append(min(seconds[1:]))
    return timings[0], timings[1]
