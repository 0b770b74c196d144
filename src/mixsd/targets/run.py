"""``run_targets``: the resumable, shardable target stage over files.

Output is streamed to ``<out>.partial`` (one flushed line per record, input order) and
renamed to ``<out>`` at the end. ``<out>.partial.json`` holds a fingerprint of everything
that decides the targets (config, model, records); re-running the same command resumes
after the last complete line (a line cut by a kill is discarded and redone), a different
config is refused, ``--overwrite`` starts again. Under ``accelerate launch`` (or torchrun)
process r of w takes the records ``i % w == r`` into its own shard; the main process merges
the shards in input order, so the file equals a one-process run (design.md, "Seeds").
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.io import atomic_write_json, atomic_write_text, dumps_line, git_commit, versions
from mixsd.records import KnowledgeRecord, read_records
from mixsd.targets.build import TargetBuilder
from mixsd.targets.config import TargetsConfig


@dataclass
class Shard:
    """This process's share of the work."""

    rank: int
    world: int
    state: Any = None  # accelerate PartialState when distributed

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def current_shard(device: str = "auto") -> Shard:
    """Rank and world size from accelerate (one process when not launched distributed).

    Works under ``accelerate launch --multi_gpu`` and ``torchrun`` (CPU processes use gloo).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard(0, 1)
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    return Shard(state.process_index, state.num_processes, state)


def fingerprint(config: TargetsConfig, model_name: str, records: list[KnowledgeRecord]) -> str:
    """sha256 of what decides the targets: semantic config fields, model name, records."""
    payload = {
        "config": config.fingerprint_dict(),
        "model": model_name,
        "records": [r.to_dict() for r in records],
    }
    return hashlib.sha256(dumps_line(payload).encode("utf-8")).hexdigest()


def _model_name(config: TargetsConfig, model: Any) -> str:
    if isinstance(model, str):
        return model
    if model is None:
        if not config.model:
            raise MixsdError("no model given: pass --model ID_OR_PATH (or 'toy')")
        return config.model
    return f"{type(model).__name__}:{getattr(model.config, '_name_or_path', '')}"


def _resume(partial: Path, fp: str, expected_ids: list[str], overwrite: bool) -> int:
    """Prepare ``partial`` for appending; return how many records it already holds."""
    sidecar = Path(str(partial) + ".json")
    if overwrite or not partial.exists():
        partial.write_bytes(b"")  # exists even when this shard has no records
        atomic_write_json(sidecar, {"fingerprint": fp})
        return 0
    try:
        stored = json.loads(sidecar.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError):
        stored = None
    if stored != fp:
        raise MixsdError(
            f"{partial} was made with a different config, model or data; re-run "
            "with --overwrite to start again (or restore the original settings)"
        )
    raw = partial.read_bytes()
    good, offset = 0, 0
    for line in raw.split(b"\n")[:-1]:  # the last piece has no newline: cut by a kill
        try:
            row = json.loads(line.decode("utf-8"))
        except ValueError:
            break
        if good >= len(expected_ids) or row.get("id") != expected_ids[good]:
            break
        good, offset = good + 1, offset + len(line) + 1
    with partial.open("r+b") as fh:
        fh.truncate(offset)
    return good


def _load(config: TargetsConfig, model: Any, tokenizer: Any, shard: Shard) -> tuple[Any, Any]:
    from mixsd.models import load_model_and_tokenizer, load_tokenizer

    if model is not None and not isinstance(model, str):
        if tokenizer is None:
            raise MixsdError("run_targets got a model object without its tokenizer")
        return model, tokenizer
    name = model if isinstance(model, str) else config.model
    if config.method == "sft":
        return None, tokenizer or load_tokenizer(name)
    device = config.device
    if shard.state is not None and device in ("", "auto"):
        device = str(shard.state.device)
    loaded, loaded_tok = load_model_and_tokenizer(name, device=device, dtype=config.dtype)
    return loaded, tokenizer or loaded_tok


def _write_shard(
    config: TargetsConfig,
    records: list[KnowledgeRecord],
    partial: Path,
    fp: str,
    model: Any,
    tokenizer: Any,
    shard: Shard,
) -> tuple[TargetBuilder | None, int]:
    """Generate this shard's missing records into ``partial``; return (builder, resumed)."""
    resumed = _resume(partial, fp, [r.id for r in records], config.overwrite)
    if resumed == len(records):
        return None, resumed
    model, tokenizer = _load(config, model, tokenizer, shard)
    builder = TargetBuilder(model, tokenizer, config)
    desc = "targets" if shard.world == 1 else f"targets [{shard.rank}/{shard.world}]"
    with partial.open("a", encoding="utf-8") as fh:
        for target in builder.iter_targets(records[resumed:], desc=desc):
            fh.write(dumps_line(target.to_dict()) + "\n")
            fh.flush()
        os.fsync(fh.fileno())
    return builder, resumed


def _merge(out: Path, shard_files: list[Path], n_records: int) -> None:
    """Interleave shard files (record i is line i // w of shard i % w) into ``out``."""
    shards = [p.read_text(encoding="utf-8").splitlines() for p in shard_files]
    world = len(shards)
    lines = [shards[i % world][i // world] for i in range(n_records)]
    atomic_write_text(out, "".join(line + "\n" for line in lines))


def summarize(out: Path) -> dict[str, Any]:
    """Counts of a finished targets file."""
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line]
    metas = [r.get("meta", {}) for r in rows]
    fractions = [
        m["naive_token_fraction"] for m in metas if m.get("naive_token_fraction") is not None
    ]
    return {
        "records": len(rows),
        "verified": sum(bool(m.get("verified")) for m in metas),
        "unverified": sum(not m.get("verified") for m in metas),
        "prompt_too_long": sum(m.get("finish_reason") == "prompt_too_long" for m in metas),
        "max_length": sum(m.get("finish_reason") == "max_length" for m in metas),
        "mean_naive_token_fraction": (
            round(sum(fractions) / len(fractions), 4) if fractions else None
        ),
        "mean_attempts": round(sum(m.get("attempts", 0) for m in metas) / max(1, len(rows)), 3),
        "mean_num_tokens": round(sum(m.get("num_tokens", 0) for m in metas) / max(1, len(rows)), 2),
        "failed_checks": dict(Counter(m["failed_check"] for m in metas if m.get("failed_check"))),
    }


def _device_of(builder: TargetBuilder | None) -> str | None:
    model = builder.model if builder is not None else None
    if model is None:
        return None
    return str(next(model.parameters()).device)


def run_targets(
    config: TargetsConfig,
    data: str | Path,
    out: str | Path,
    model: Any = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Build the targets of the records in ``data`` into the JSONL file ``out``.

    ``model`` is a name/path (default ``config.model``) or a loaded model (then pass its
    ``tokenizer``). Returns the summary (records, verified, unverified, prompt_too_long,
    mean naive-token fraction, tokens/s, wall seconds); also written to ``<out>.run.json``
    beside ``<out>.config.yaml``.
    """
    start = time.perf_counter()
    out = Path(out)
    records = read_records(data)
    model_name = _model_name(config, model)
    fp = fingerprint(config, model_name, records)
    run_json = Path(str(out) + ".run.json")
    if out.exists() and not config.overwrite:
        previous = json.loads(run_json.read_text(encoding="utf-8")) if run_json.exists() else {}
        if previous.get("fingerprint") != fp:
            raise MixsdError(
                f"{out} exists and was made with other settings (or has no "
                f"{run_json.name}); use --overwrite to replace it"
            )
        return {**summarize(out), "already_complete": True, "out": str(out)}
    shard = current_shard(config.device)
    mine = [r for i, r in enumerate(records) if i % shard.world == shard.rank]
    suffix = "" if shard.world == 1 else f".shard{shard.rank}of{shard.world}"
    partial = Path(f"{out}{suffix}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    builder, resumed = _write_shard(config, mine, partial, fp, model, tokenizer, shard)
    done_shard = Path(f"{out}{suffix}.done") if shard.world > 1 else out
    os.replace(partial, done_shard)
    Path(str(partial) + ".json").unlink(missing_ok=True)
    shard.barrier()
    if shard.world > 1 and shard.rank == 0:
        files = [Path(f"{out}.shard{r}of{shard.world}.done") for r in range(shard.world)]
        _merge(out, files, len(records))
        for f in files:
            f.unlink()
    shard.barrier()
    gen_s = builder.generate_s if builder else 0.0
    tokens = builder.generated_tokens if builder else 0
    summary = {
        **summarize(out),
        "resumed_records": resumed,
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / gen_s, 1) if gen_s > 0 else None,
        # attempts each check rejected in this invocation, and what the round trip cost
        "rejected_attempts": dict(builder.rejections) if builder else {},
        "round_trip_tokens": builder.round_trip_tokens if builder else 0,
        "round_trip_s": round(builder.round_trip_s, 3) if builder else 0.0,
        "wall_s": round(time.perf_counter() - start, 3),
        "processes": shard.world,
        "rank": shard.rank,
        "out": str(out),
    }
    if shard.rank == 0:
        atomic_write_text(Path(str(out) + ".config.yaml"), config.to_yaml())
        atomic_write_json(
            run_json,
            {
                "fingerprint": fp,
                "model": model_name,
                "data": str(data),
                "summary": summary,
                "seed": config.seed,
                "device": _device_of(builder),
                "argv": sys.argv,
                "versions": versions(),
                "git_commit": git_commit(),
            },
        )
    return summary
