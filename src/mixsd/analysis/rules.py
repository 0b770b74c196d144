"""The mixing-rule table (``mixsd analyze rules``): every mixing unit x lambda on the same records.

For each rule (:data:`~mixsd.targets.words.MIX_UNITS`) and lambda the targets are built
with the paper's answer-key verification, and the table reports, over the same records:

* ``verified_pct`` — records with a verified target;
* ``generations_per_verified`` — all attempts made / verified targets;
* ``naive_token_fraction`` — mean over the final targets;
* ``target_nll`` — mean per-token NLL of the verified targets under the base model given x;
* ``differs_from_reference_pct`` / ``differs_from_expert_pct`` — verified targets whose text
  is not y* / not the pure-expert (lambda 0) target of the same record: "mixed" measured;
* ``entity_safe_pct`` / ``round_trip_pct`` — verified targets that the entity check and the
  round trip (:mod:`mixsd.targets.verify`) would also accept.

Two reference rows: y* (what SFT trains on) and the pure-expert target (lambda 0, where all
units coincide).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from mixsd.analysis.nll import target_nll
from mixsd.answers import is_correct, normalize_answer
from mixsd.io import atomic_write_json
from mixsd.records import KnowledgeRecord, TargetRecord
from mixsd.targets.build import TargetBuilder
from mixsd.targets.config import TargetsConfig
from mixsd.targets.verify import entity_problem
from mixsd.targets.words import MIX_UNITS

COLUMNS = (
    ("verified_pct", "verified %", "{:.0f}"),
    ("generations_per_verified", "gens / verified", "{:.2f}"),
    ("naive_token_fraction", "naive frac", "{:.3f}"),
    ("target_nll", "target NLL", "{:.3f}"),
    ("differs_from_reference_pct", "≠ y* %", "{:.0f}"),
    ("differs_from_expert_pct", "≠ expert %", "{:.0f}"),
    ("entity_safe_pct", "entity-safe %", "{:.0f}"),
    ("round_trip_pct", "round-trip %", "{:.0f}"),
)


def _same(a: str, b: str) -> bool:
    return normalize_answer(a) == normalize_answer(b)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _round_trip_passes(builder: TargetBuilder, targets: Sequence[TargetRecord]) -> list[bool]:
    """Does each target pass the round trip? (Batched by the builder's batch size.)"""
    size = builder.config.batch_size
    passes: list[bool] = []
    for i in range(0, len(targets), size):
        chunk = targets[i:i + size]
        answers = builder.round_trip([(t.record, t.target, 1) for t in chunk])
        passes += [is_correct(a, t.record.answer_key, builder.config.extractor)
                   for a, t in zip(answers, chunk, strict=True)]
    return passes


def rule_row(model: Any, tokenizer: Any, records: Sequence[KnowledgeRecord],
             config: TargetsConfig, expert: dict[str, str], *, nll_batch_size: int = 8
             ) -> dict[str, Any]:
    """The table's row of one config (its ``mix_unit`` and ``mix_lambda``)."""
    start = time.perf_counter()
    builder = TargetBuilder(model, tokenizer, config)
    targets = list(builder.iter_targets(records, desc=f"{config.mix_unit} {config.mix_lambda:g}"))
    verified = [t for t in targets if t.verified]
    fractions = [t.meta["naive_token_fraction"] for t in targets]
    nll = target_nll(model, tokenizer, [(t.record.prompt, t.target) for t in verified],
                     guidance=config.guidance, batch_size=nll_batch_size).mean_nll \
        if verified else None
    round_trip = _round_trip_passes(builder, verified)
    return {
        "mix_unit": config.mix_unit,
        "mix_lambda": config.mix_lambda,
        "records": len(targets),
        "verified": len(verified),
        "verified_pct": _pct(len(verified), len(targets)),
        "generations": sum(t.meta["attempts"] for t in targets),
        "generations_per_verified": (round(sum(t.meta["attempts"] for t in targets)
                                           / len(verified), 3) if verified else None),
        "naive_token_fraction": round(sum(fractions) / len(fractions), 4) if fractions else None,
        "target_nll": None if nll is None else round(nll, 4),
        "differs_from_reference_pct": _pct(
            sum(not _same(t.target, t.record.answer) for t in verified), len(verified)),
        "differs_from_expert_pct": _pct(
            sum(not _same(t.target, expert[t.record.id]) for t in verified), len(verified)),
        "entity_safe_pct": _pct(
            sum(entity_problem(t.target, t.record) is None for t in verified), len(verified)),
        "round_trip_pct": _pct(sum(round_trip), len(verified)),
        "generated_tokens": builder.generated_tokens,
        "round_trip_tokens": builder.round_trip_tokens,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def compare_rules(model: Any, tokenizer: Any, records: Sequence[KnowledgeRecord],
                  config: TargetsConfig, *, lambdas: Sequence[float] = (0.3, 0.5, 0.7),
                  units: Sequence[str] = MIX_UNITS, nll_batch_size: int = 8,
                  partial: str | None = None) -> dict[str, Any]:
    """Every unit x lambda on ``records`` with ``config``'s other settings; the table's data.

    With ``partial`` (a JSON path) the table is saved after every row and a re-run with the
    same config and records resumes after the rows already there.

    Example::

        model, tok = load_model_and_tokenizer("toy")
        table = compare_rules(model, tok, records, TargetsConfig(guidance="toy"))
        print(rules_markdown(table))
    """
    plain = dataclasses.replace(config, verify_entities=False, verify_round_trip=False)
    pure = dataclasses.replace(plain, mix_lambda=0.0, mix_unit="token")
    expert_targets = list(TargetBuilder(model, tokenizer, pure).iter_targets(records))
    expert = {t.record.id: t.target for t in expert_targets}
    sft = dataclasses.replace(plain, method="sft")
    references = {
        "y* (reference)": [TargetBuilder(model, tokenizer, sft).sft_target(r) for r in records],
        "pure expert (lambda 0)": expert_targets,
    }
    ref_rows = []
    for name, targets in references.items():
        verified = [t for t in targets if t.verified]
        nll = target_nll(model, tokenizer, [(t.record.prompt, t.target) for t in verified],
                         guidance=config.guidance, batch_size=nll_batch_size).mean_nll
        ref_rows.append({"name": name, "verified_pct": _pct(len(verified), len(targets)),
                         "target_nll": round(nll, 4)})
    table = {"records": len(records), "config": plain.fingerprint_dict(),
             "record_ids": [r.id for r in records], "references": ref_rows, "rows": []}
    done = _resumable_rows(partial, table)
    for lam in lambdas:
        for unit in units:
            row = done.get((unit, lam)) or rule_row(
                model, tokenizer, records, dataclasses.replace(plain, mix_unit=unit,
                                                               mix_lambda=lam),
                expert, nll_batch_size=nll_batch_size)
            table["rows"].append(row)
            if partial:
                atomic_write_json(partial, table)
    return table


def _resumable_rows(partial: str | None, table: dict[str, Any]) -> dict[tuple, dict]:
    """Rows of an earlier run of the same table (same config and records), by (unit, lambda)."""
    import json
    from pathlib import Path

    if not partial or not Path(partial).exists():
        return {}
    old = json.loads(Path(partial).read_text(encoding="utf-8"))
    if old.get("config") != table["config"] or old.get("record_ids") != table["record_ids"]:
        return {}
    return {(r["mix_unit"], r["mix_lambda"]): r for r in old.get("rows", [])}


def _cell(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def rules_markdown(table: dict[str, Any], title: str = "Mixing rules") -> str:
    """The table as Markdown (one row per rule and lambda, then the reference rows)."""
    cfg = table["config"]
    lines = [f"# {title}", "",
             f"{table['records']} records, model `{cfg.get('model')}`, guidance "
             f"`{cfg.get('guidance')}`, temperature {cfg.get('temperature')}, "
             f"max_new_tokens {cfg.get('max_new_tokens')}, max_retries {cfg.get('max_retries')}, "
             f"seed {cfg.get('seed')}. Verified = the paper's answer-key check; the last two "
             "columns are the share of verified targets the entity check and the round trip "
             "would also accept.", "",
             "| rule | λ | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for row in table["rows"]:
        cells = [_cell(row.get(k), p) for k, _, p in COLUMNS]
        lines.append(f"| {row['mix_unit']} | {row['mix_lambda']:g} | " + " | ".join(cells) + " |")
    lines += ["", "| reference | verified % | target NLL |", "|---|---|---|"]
    for ref in table["references"]:
        lines.append(f"| {ref['name']} | {_cell(ref['verified_pct'], '{:.0f}')} | "
                     f"{_cell(ref['target_nll'], '{:.3f}')} |")
    return "\n".join(lines) + "\n"


def run_rules(config: TargetsConfig, data: str, *, lambdas: Sequence[float] = (0.3, 0.5, 0.7),
              units: Sequence[str] = MIX_UNITS, n_records: int | None = None,
              out: str | None = None) -> tuple[dict[str, Any], str]:
    """Load ``config.model`` and the records of ``data``; build the table; write ``out``.md
    and ``out``.json when given. Returns (table, Markdown)."""
    from pathlib import Path

    from mixsd.errors import MixsdError
    from mixsd.io import atomic_write_text
    from mixsd.models import load_model_and_tokenizer
    from mixsd.records import read_records

    if not config.model:
        raise MixsdError("no model given: pass --model ID_OR_PATH (or an alias)")
    records = read_records(data)[:n_records]
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device,
                                                dtype=config.dtype)
    start = time.perf_counter()
    table = compare_rules(model, tokenizer, records, config, lambdas=lambdas, units=units,
                          partial=f"{out}.partial.json" if out else None)
    table["data"], table["wall_s"] = str(data), round(time.perf_counter() - start, 1)
    text = rules_markdown(table, title=f"Mixing rules on {config.model}")
    if out:
        atomic_write_json(Path(f"{out}.json"), table)
        atomic_write_text(Path(f"{out}.md"), text)
        Path(f"{out}.partial.json").unlink(missing_ok=True)
    return table, text
