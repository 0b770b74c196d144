"""Entry functions of ``mixsd analyze nll`` and ``mixsd analyze fisher``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixsd.io import atomic_write_json


def analyze_nll(model_path: str, targets: Sequence[str], *, guidance: str = "knowledge",
                batch_size: int = 8, include_unverified: bool = False, out: str | None = None,
                device: str | None = None) -> dict[str, Any]:
    """Mean per-token NLL of each targets file under ``model_path`` (the base model).

    Returns ``{"nll": {file: mean NLL per token}, "details": {...}, "histogram": path|None}``;
    with ``out`` writes ``nll.json`` and ``nll_hist.png`` there.
    """
    from mixsd.analysis.nll import nll_of_files, plot_nll_histogram
    from mixsd.models import load_model_and_tokenizer

    start = time.perf_counter()
    model, tokenizer = load_model_and_tokenizer(model_path, device=device, dtype="float32")
    results = nll_of_files(model, tokenizer, targets, guidance=guidance, batch_size=batch_size,
                           include_unverified=include_unverified)
    summary: dict[str, Any] = {"model": model_path,
                               "nll": {k: r.mean_nll for k, r in results.items()},
                               "details": {k: r.to_dict() for k, r in results.items()},
                               "histogram": None}
    if out:
        summary["histogram"] = str(plot_nll_histogram(results, Path(out) / "nll_hist.png"))
        summary["wall_s"] = time.perf_counter() - start
        atomic_write_json(Path(out) / "nll.json", summary)
    return summary


def analyze_fisher(model_path: str, checkpoints: Sequence[str], suites: str, *,
                   max_examples: int | None = 256, out: str | None = None,
                   device: str | None = None, **suite_options: Any) -> dict[str, Any]:
    """Fisher of the base model on ``suites`` and the displacement of every checkpoint.

    Returns ``{"n_examples", "fisher": {checkpoint: {"total", "per_layer"}}}``; with ``out``
    writes ``fisher.json`` there.
    """
    from mixsd.analysis.fisher import (
        checkpoint_dirs,
        empirical_fisher,
        fisher_displacement,
        load_checkpoint_parameters,
        parameters_of,
        suite_examples,
    )
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer, resolve_model_path

    start = time.perf_counter()
    dirs = checkpoint_dirs(checkpoints)
    chosen = get_suites(suites, **suite_options)
    model, tokenizer = load_model_and_tokenizer(model_path, device=device, dtype="float32")
    examples = suite_examples(chosen, tokenizer, max_examples=max_examples)
    fisher = empirical_fisher(model, examples)
    theta0 = parameters_of(model)
    del model
    base_path = resolve_model_path(model_path)
    found = {str(d): fisher_displacement(fisher, theta0, load_checkpoint_parameters(d, base_path))
             for d in dirs}
    summary = {"model": model_path, "suites": list(chosen), "n_examples": len(examples),
               "fisher": found, "wall_s": time.perf_counter() - start}
    if out:
        atomic_write_json(Path(out) / "fisher.json", summary)
    return summary
