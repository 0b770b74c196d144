"""The `mixsd edit` stage: records in, an edited model out.

    OUT/                the edited model and tokenizer (``save_pretrained``)
    OUT/edit.json       per-fact value statistics (NLL of the target before the edit, with
                        the optimised value, after the edit) and per-layer update norms
    OUT/config.yaml, OUT/run.json
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixsd.artifacts import COMPLETE, RUNNING, Reuse, StageDir, open_stage
from mixsd.editing.config import EditConfig
from mixsd.editing.covariance import (
    CovarianceTexts,
    generation_prefixes,
    generation_texts,
    key_covariances,
)
from mixsd.editing.locate import decoder_layers, default_layers
from mixsd.editing.memit import apply_memit, check_subjects
from mixsd.errors import MixsdError
from mixsd.io import atomic_write_json, file_sha256
from mixsd.records import KnowledgeRecord, read_records
from mixsd.registry import REGISTRIES


def context_prefixes(model: Any, tokenizer: Any, config: EditConfig) -> list[str]:
    """The context prefixes keys and values are averaged over (besides the bare prompt)."""
    if config.n_prefixes == 0:
        return []
    registered = REGISTRIES.text_sources.find(config.resolved_cov_source())
    if registered is not None:
        return registered.prefixes(config.n_prefixes, config.prefix_words, config.seed)
    return generation_prefixes(model, tokenizer, config.n_prefixes, config.prefix_words,
                               config.seed)


def covariances_for(model: Any, tokenizer: Any, config: EditConfig, layers: Sequence[int],
                    held_out: Sequence[str] = ()) -> dict[int, Any]:
    """C of each edited layer (cached on disk per model, layer and text source)."""
    source = config.resolved_cov_source()
    registered = REGISTRIES.text_sources.find(source)
    if registered is not None:
        def texts() -> list[str]:
            return registered.texts(config.cov_texts, config.seed)
    else:
        def texts() -> list[str]:
            return generation_texts(model, tokenizer, config.cov_texts, config.seed,
                                    config.cov_max_tokens, held_out)
    tag = source if registered is not None or not held_out else f"{source}+{len(held_out)}"
    on = CovarianceTexts(tag, config.cov_texts, config.cov_max_tokens, config.seed)
    return key_covariances(model, tokenizer, layers, on, texts, batch_size=config.batch_size)


def edit_model(model: Any, tokenizer: Any, records: Sequence[KnowledgeRecord],
               config: EditConfig, *, held_out: Sequence[str] = (),
               progress: bool = False) -> dict[str, Any]:
    """Write every record's fact into ``model`` (in place) with MEMIT; return the statistics.

    ``held_out``: prompts whose greedy continuations are generic text for C (source
    ``generations``); none means the drift module's neutral prompts."""
    check_subjects(records)
    if not records:
        raise MixsdError("no records to edit")
    layers = sorted(config.layers or default_layers(len(decoder_layers(model))))
    covariances = covariances_for(model, tokenizer, config, layers, held_out)
    prefixes = context_prefixes(model, tokenizer, config)
    stats = apply_memit(model, tokenizer, records, config, prefixes=prefixes,
                        covariances=covariances, progress=progress)
    stats["prefixes"] = prefixes
    return stats


# What may change between two invocations on one folder: where it is and what runs it.
EDIT_MUTABLE = ("out", "device")


def open_edit_dir(config: EditConfig) -> StageDir:
    """Open ``config.out`` (:func:`mixsd.artifacts.open_stage`): the same edit of the same
    records file writes it again; another edit (other values, other records) is refused
    once the folder holds an edited model, naming the fields that differ."""
    out = Path(config.out)
    fields = {**config.decisive_dict(), "data_sha256": file_sha256(config.data)}
    return open_stage(out, "edit", fields,
                      reuse=Reuse(mutable=EDIT_MUTABLE, defaults=config.later_defaults(),
                                  has_outputs=(out / "edit.json").is_file()))


def run_edit(config: EditConfig, *, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Read ``config.data``, edit the model, save it to ``config.out``; return a summary."""
    from mixsd.models import load_model_and_tokenizer

    if not config.data:
        raise MixsdError("data: a records file is needed (flag --data)")
    start = time.perf_counter()
    records = read_records(config.data)
    check_subjects(records)
    if model is None:
        model, tokenizer = load_model_and_tokenizer(config.model, device=config.device)
    out = Path(config.out)
    with open_edit_dir(config) as stage:
        stage.write_info(config, status=RUNNING)
        stats = edit_model(model, tokenizer, records, config, progress=True)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        atomic_write_json(out / "edit.json", stats)
        wall_s = time.perf_counter() - start
        stage.write_info(config, status=COMPLETE, wall_s=round(wall_s, 3),
                         n_records=len(records))
    facts = stats["facts"]
    mean = {k: sum(f[k] for f in facts) / len(facts) for k in ("nll_before", "nll_after")}
    return {"out": out, "n_records": len(records), "layers": stats["layers"], "wall_s": wall_s,
            **{f"mean_{k}": v for k, v in mean.items()}}
