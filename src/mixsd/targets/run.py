"""``run_targets``: the resumable, shardable target stage over files.

Targets are a folder (:mod:`mixsd.artifacts`): ``DIR/targets.jsonl``, its resolved
``DIR/config.yaml`` and ``DIR/run.json`` (status, fingerprint of what decides the targets:
config, model, records; the summary once complete). Output is streamed to
``DIR/targets.jsonl.partial`` (one flushed line per record, input order) and renamed to
``DIR/targets.jsonl`` at the end; re-running the same command resumes after the last
complete line (a line cut by a kill is discarded and redone), a different config is
refused, ``--overwrite`` builds a new folder beside it (``.DIR.overwrite``) and renames it
over ``DIR`` once complete, so an interruption leaves the old targets whole. One process
writes a folder at a time (its lock, :func:`mixsd.artifacts.open_stage`); ``run.json`` is
written once the model has loaded, so a start that fails on its inputs leaves nothing that
refuses the corrected command. Under ``accelerate launch`` (or torchrun) process r
of w takes the records ``i % w == r`` into its own shard; the main process merges the
shards in input order, so the file equals a one-process run (docs/architecture.md, "Seeds"). The
processes coordinate through files in the folder (:mod:`mixsd.targets.shards`): a dead peer
ends the run with :class:`~mixsd.errors.PeerLostError` instead of a hang, and finished
shards are kept. A single targets file of the layout before folders (``X.jsonl`` with its
``X.jsonl.run.json``) is still read everywhere (:func:`mixsd.records.targets_file`,
:func:`targets_run_info`).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.artifacts import (
    COMPLETE,
    RUN_INFO,
    RUNNING,
    Reuse,
    StageDir,
    fingerprint,
    open_stage,
)
from mixsd.errors import ArtifactWriteError, ConfigError, MixsdError
from mixsd.io import atomic_write_json, atomic_write_text, dumps_line, read_json_or_empty
from mixsd.records import TARGETS_FILE, KnowledgeRecord, read_json_objects, read_records
from mixsd.targets.build import TargetBuilder
from mixsd.targets.config import TargetsConfig
from mixsd.targets.shards import Heartbeat, Shard, current_shard, heartbeat, wait_for_peers


def target_fields(config: TargetsConfig, model_name: str, records: list[KnowledgeRecord]
                  ) -> dict[str, Any]:
    """What decides the targets (the stage's fingerprinted fields): the semantic config
    fields, the model name and a fingerprint of the records."""
    return {**config.fingerprint_dict(), "model": model_name,
            "records": fingerprint([r.to_dict() for r in records])}


def targets_run_info(path: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a targets folder, or the ``X.jsonl.run.json`` sidecar of a single
    targets file (the layout before folders); ``{}`` when there is none."""
    path = Path(path)
    return read_json_or_empty(path / RUN_INFO if path.is_dir() else f"{path}.run.json")


def _model_name(config: TargetsConfig, model: Any) -> str:
    if isinstance(model, str):
        return model
    if model is None:
        if not config.model:
            raise MixsdError("no model given: pass --model ID_OR_PATH (or an alias)")
        return config.model
    return f"{type(model).__name__}:{getattr(model.config, '_name_or_path', '')}"


def _resume(partial: Path, expected_ids: list[str], fresh: bool) -> int:
    """Prepare ``partial`` for appending; return how many records it already holds.

    ``fresh`` (a new run, or ``--overwrite``) empties it; otherwise the folder's run.json
    matched this run's fingerprint and the complete lines whose ids are the expected ones
    are kept (a line cut by a kill is dropped)."""
    if fresh or not partial.exists():
        partial.write_bytes(b"")  # exists even when this shard has no records
        return 0
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
        return None, tokenizer or load_tokenizer(name, **config.hub_options())
    device = shard.device(config.device)
    loaded, loaded_tok = load_model_and_tokenizer(name, device=device, dtype=config.dtype,
                                                  **config.hub_options())
    return loaded, tokenizer or loaded_tok


@dataclass
class _Process:
    """What this process generates with: the config, its shard of the records, the model and
    tokenizer (or None, loaded when first needed), and ``on_ready()``, run once the model has
    loaded (or when nothing is left to generate), before the first target is written."""

    config: TargetsConfig
    shard: Shard
    model: Any
    tokenizer: Any
    on_ready: Any = None

    def ready(self) -> None:
        if self.on_ready is not None:
            self.on_ready()


def _write_shard(proc: _Process, records: list[KnowledgeRecord], partial: Path, fresh: bool,
                 beat: Heartbeat | None = None) -> tuple[TargetBuilder | None, int]:
    """Generate this shard's missing records into ``partial``; return (builder, resumed)."""
    shard = proc.shard
    resumed = _resume(partial, [r.id for r in records], fresh)
    if resumed == len(records):
        proc.ready()
        return None, resumed
    model, tokenizer = _load(proc.config, proc.model, proc.tokenizer, shard)
    proc.ready()
    builder = TargetBuilder(model, tokenizer, proc.config)
    desc = "targets" if shard.world == 1 else f"targets [{shard.rank}/{shard.world}]"
    try:
        with partial.open("a", encoding="utf-8") as fh:
            for target in builder.iter_targets(records[resumed:], desc=desc):
                fh.write(dumps_line(target.to_dict()) + "\n")
                fh.flush()
                if beat is not None:
                    beat.raise_if_peer_lost()
            os.fsync(fh.fileno())
    except OSError as exc:  # a full disk: the complete lines stay and resume
        raise ArtifactWriteError(partial, exc) from exc
    return builder, resumed


def _shard_done(done: Path, fp: str) -> bool:
    """Whether ``done`` is a finished shard of this very run (its sidecar's fingerprint)."""
    return done.is_file() and read_json_or_empty(str(done) + ".json").get("fingerprint") == fp


def _run_shard(proc: _Process, out: Path, mine: list[KnowledgeRecord], stage: StageDir,
               n_records: int) -> tuple[TargetBuilder | None, int, dict[str, Any]]:
    """One process of a multi-process run: its shard to ``OUT.shardRofW.done`` (kept when a
    re-run finds it finished), then on rank 0 the merge once every peer's shard is done."""
    shard = proc.shard

    def done_path(rank: int) -> Path:
        return Path(f"{out}{shard.suffix(rank)}.done")

    fp = stage.fingerprint

    def ready(rank: int) -> bool:
        return _shard_done(done_path(rank), fp)

    done, partial = done_path(shard.rank), Path(f"{out}{shard.suffix()}.partial")
    with heartbeat(out, shard, ready) as beat:
        if ready(shard.rank) and stage.resumed:
            proc.ready()
            builder, resumed = None, len(mine)
            try:
                shard_summary = summarize(done)
            except FileNotFoundError:  # rank 0 merged it meanwhile
                shard_summary = {}
        else:
            builder, resumed = _write_shard(proc, mine, partial, not stage.resumed, beat)
            # Summarised before the rename: once it is done, rank 0 may merge and delete it.
            shard_summary = summarize(partial)
            atomic_write_json(str(done) + ".json", {"fingerprint": fp})
            os.replace(partial, done)
        if shard.rank == 0:
            wait_for_peers(out, shard, ready, list(range(1, shard.world)),
                           "waiting for its shard")
            files = [done_path(r) for r in range(shard.world)]
            _merge(out, files, n_records)
            for f in files:
                f.unlink()
                Path(str(f) + ".json").unlink(missing_ok=True)
    beat.path.unlink(missing_ok=True)
    return builder, resumed, shard_summary


def _merge(out: Path, shard_files: list[Path], n_records: int) -> None:
    """Interleave shard files (record i is line i // w of shard i % w) into ``out``."""
    shards = [p.read_text(encoding="utf-8").splitlines() for p in shard_files]
    world = len(shards)
    lines = [shards[i % world][i // world] for i in range(n_records)]
    atomic_write_text(out, "".join(line + "\n" for line in lines))


def summarize(out: Path) -> dict[str, Any]:
    """Counts of a finished targets file."""
    rows = [row for row, _ in read_json_objects(out, allow_empty=True)]
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
        "realised_lambda": realised_lambdas(metas),
    }


def realised_lambdas(metas: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """How many targets were made at each lambda (the lambda fallback lowers it), verified
    and not: ``{"0.5": {"verified": 20, "unverified": 0}, "0.3": {...}}`` (SFT: ``{}``)."""
    found: dict[str, dict[str, int]] = {}
    for m in metas:
        if m.get("lambda") is None:
            continue
        row = found.setdefault(f"{float(m['lambda']):g}", {"verified": 0, "unverified": 0})
        row["verified" if m.get("verified") else "unverified"] += 1
    return dict(sorted(found.items(), key=lambda kv: -float(kv[0])))


def _device_of(builder: TargetBuilder | None) -> str | None:
    model = builder.model if builder is not None else None
    if model is None:
        return None
    return str(next(model.parameters()).device)


def _out_dir(out: str | Path) -> Path:
    """The targets folder ``out``; a ``.jsonl`` path (the single-file layout before folders)
    is refused, saying what to pass."""
    out = Path(out)
    if out.suffix == ".jsonl" or out.is_file():
        raise ConfigError(f"out: targets are written to a folder (DIR/{TARGETS_FILE}, "
                          f"DIR/config.yaml, DIR/run.json); pass a directory such as "
                          f"{out.with_suffix('')}, not the file {out} (flag --out)")
    return out


def _has_targets(folder: Path) -> bool:
    """Whether a targets folder holds targets already (a finished file, a started partial or
    a shard): a folder without any may be replaced by a run of other values."""
    return folder.is_dir() and any(p.stat().st_size > 0 for p in folder.glob(f"{TARGETS_FILE}*")
                                   if p.is_file() and not p.name.endswith((".alive", ".json")))


def run_targets(
    config: TargetsConfig,
    data: str | Path,
    out: str | Path,
    model: Any = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Build the targets of the records in ``data`` into the folder ``out``
    (``out/targets.jsonl``, ``out/config.yaml``, ``out/run.json``).

    ``model`` is a name/path (default ``config.model``) or a loaded model (then pass its
    ``tokenizer``). Returns the summary (records, verified, unverified, prompt_too_long,
    mean naive-token fraction, tokens/s, wall seconds); also written to ``out/run.json``.
    The folder is locked while the run writes it (a second writer is refused);
    ``config.overwrite`` builds the new targets beside the old ones and renames them over.
    """
    from mixsd.models import check_device_available

    start = time.perf_counter()
    out_dir = _out_dir(out)
    records = read_records(data)
    model_name = _model_name(config, model)
    if model is None or isinstance(model, str):
        check_device_available(config.device)
    with open_stage(out_dir, "targets", target_fields(config, model_name, records),
                    reuse=Reuse(has_outputs=_has_targets(out_dir)),
                    overwrite=config.overwrite, overwrite_flag="--overwrite") as stage:
        return _run_targets(config, data, stage, records, model_name, model, tokenizer, start)


def _run_targets(config: TargetsConfig, data: str | Path, stage: StageDir,
                 records: list[KnowledgeRecord], model_name: str, model: Any, tokenizer: Any,
                 start: float) -> dict[str, Any]:
    out_dir, dest = stage.path, stage.dest
    out = out_dir / TARGETS_FILE
    if stage.complete and out.is_file():
        return {**summarize(out), "already_complete": True, "out": str(dest),
                **_export(config, dest, model_name, tokenizer)}
    if out.is_file() and not stage.resumed and not config.overwrite:
        raise MixsdError(f"{out_dir} holds a {TARGETS_FILE} without the run.json that says how "
                         "it was made; pass --overwrite to rebuild it or choose another --out")
    shard = current_shard()
    mine = [r for i, r in enumerate(records) if i % shard.world == shard.rank]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactWriteError(out_dir, exc) from exc
    info = {"model": model_name, "data": str(data), "seed": config.seed}

    def on_ready() -> None:  # the model loaded: from now on the folder is this run's
        if shard.rank == 0:
            stage.write_info(config, status=RUNNING, **info)

    proc = _Process(config, shard, model, tokenizer, on_ready)
    if shard.world == 1:
        builder, resumed = _write_shard(proc, mine, Path(f"{out}.partial"), not stage.resumed)
        os.replace(f"{out}.partial", out)
    else:
        builder, resumed, shard_summary = _run_shard(proc, out, mine, stage, len(records))
        if shard.rank != 0:  # rank 0 merges; the others report their own shard
            return {**shard_summary, "resumed_records": resumed, "rank": shard.rank,
                    "processes": shard.world, "out": str(dest),
                    "wall_s": round(time.perf_counter() - start, 3)}
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
        "out": str(dest),
    }
    if shard.rank == 0:
        stage.write_info(config, status=COMPLETE, **info, summary=summary,
                         device=_device_of(builder))
        stage.commit()  # the export reads the complete folder where it now lies
        summary.update(_export(config, stage.dest, model_name, tokenizer))
    return summary


def _export(config: TargetsConfig, out_dir: Path, model_name: str, tokenizer: Any
            ) -> dict[str, Any]:
    """``config.export``: the complete folder's verified targets for other trainers
    (:mod:`mixsd.targets.export`); ``{"exported": {format: path}}``, ``{}`` when none."""
    if not config.export:
        return {}
    from mixsd.models import load_tokenizer
    from mixsd.targets.export import export_targets

    tokenizer = tokenizer or load_tokenizer(config.model or model_name, **config.hub_options())
    paths = export_targets(out_dir, config.export, tokenizer, guidance=config.guidance,
                           chat=config.chat_options())
    return {"exported": {fmt: str(path) for fmt, path in paths.items()}}
