"""The memorisation–retention frontier of a comparison over a learning-rate grid and seeds.

A comparison in the paper's regime trains every method at every learning rate of one grid
with several seeds, and evaluates every epoch. Each (lr, seed, epoch) whose retention was
measured is one point (memorisation, retention) of its method's frontier
(:func:`frontier_points`). The headline asks the paper's question at equal memorisation
(:func:`best_at_level`): for each method and level (50%, 80%), each learning rate's seeds at
their FIRST epoch at or above the level; the method's best point is the learning rate with
the highest mean retention among those where most seeds reach the level, reported as mean ±
sd over those seeds, with how many got there and which learning rate it is. No method gets a
rate of its own: every method is read off the same grid.

:func:`instruct_failures` explains the instruction-following probe's losses: each item the
base model complied with and a trained model does not falls in one bucket, in this order:

* ``reference_style`` — the answer is written in the injected targets' style ("The answer
  is X", ``\\boxed{}``): the training format leaks into unrelated prompts;
* ``injected_name`` — an injected name appears where the prompt did not ask for it;
* ``other`` — any other non-compliant answer (too long, wrong form).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mixsd.evaluation.results import group_name, mean_spread
from mixsd.evaluation.samples import read_sample_log
from mixsd.evaluation.schema import EpochResult, RunResult

INSTRUCT_BUCKETS = ("reference_style", "injected_name", "other")
_REFERENCE_STYLE = re.compile(r"the answer is\b|\\boxed\{", re.IGNORECASE)


RunLike = RunResult | Mapping[str, Any]


def as_runs(runs: Iterable[RunLike]) -> list[RunResult]:
    """``runs`` as typed entries (a results.json ``runs`` dict is read once, here)."""
    return [r if isinstance(r, RunResult) else RunResult.from_json(r) for r in runs]


def method_of(run: RunLike) -> str:
    """The method of a run without its learning rate and seed (``mixsd:0.3/word``)."""
    return re.sub(r"\s*lr=\S+", "", group_name(run)).strip()


def frontier_points(runs: Sequence[RunLike]) -> list[dict[str, Any]]:
    """Every (method, lr, seed, epoch) whose retention was measured, as one point."""
    points = []
    for run in as_runs(runs):
        for e in run.epochs:
            if e.retention_mean is None or e.memorization is None:
                continue
            points.append({"method": method_of(run), "lr": run.lr, "seed": run.seed,
                           "epoch": e.epoch, "memorization": e.memorization,
                           "paraphrase": e.paraphrase, "retention_mean": e.retention_mean,
                           "retention": dict(e.retention), "drift_kl": e.drift_kl})
    return points


def first_measured_at(run: RunLike, level: float) -> EpochResult | None:
    """The run's first epoch at or above ``level`` memorisation, if its retention was measured
    there (a staged evaluation measures it exactly there when ``level`` is one of its
    levels); None when the run never reaches the level or was not measured there."""
    (run,) = as_runs([run])
    for e in run.epochs:
        if (e.memorization or 0.0) >= level:
            return e if e.retention_mean is not None else None
    return None


def _summary(entries: Sequence[EpochResult], n_seeds: int, lr: Any) -> dict[str, Any]:
    mean, sd, n = mean_spread([e.retention_mean for e in entries])
    suites = sorted({s for e in entries for s in e.retention})
    return {
        "lr": lr, "seeds_reached": n, "seeds": n_seeds, "retention_mean": mean,
        "retention_sd": sd,
        "retention": {s: mean_spread([e.retention.get(s) for e in entries])[0]
                      for s in suites},
        "memorization": mean_spread([e.memorization for e in entries])[0],
        "paraphrase": mean_spread([e.paraphrase for e in entries])[0],
        "epoch": mean_spread([e.epoch for e in entries])[0],
        "drift_kl": mean_spread([e.drift_kl for e in entries])[0],
    }


def best_at_level(runs: Sequence[RunLike], level: float) -> dict[str, dict[str, Any]]:
    """Per method: ``{"best": summary or None, "by_lr": {lr: summary}}`` at ``level``.

    A learning rate's summary averages its seeds that reach ``level`` (each at its first
    epoch there); the best is the rate with the highest mean retention among the rates where
    more than half of the seeds reach the level (None when no rate does)."""
    by_method: dict[str, dict[Any, list[RunResult]]] = {}
    for run in as_runs(runs):
        if run.lr is None:  # an edit (memit): one point, no grid
            continue
        by_method.setdefault(method_of(run), {}).setdefault(run.lr, []).append(run)
    out: dict[str, dict[str, Any]] = {}
    for method, by_lr in by_method.items():
        rows = {}
        for lr, members in by_lr.items():
            hits = [first_measured_at(r, level) for r in members]
            rows[f"{lr:g}"] = _summary([h for h in hits if h is not None], len(members), lr)
        eligible = [r for r in rows.values()
                    if r["seeds_reached"] * 2 > r["seeds"] and r["retention_mean"] is not None]
        best = max(eligible, key=lambda r: r["retention_mean"], default=None)
        out[method] = {"best": best, "by_lr": rows}
    return out


def classify_instruct_failure(generation: str, names: Iterable[str] = ()) -> str:
    """The bucket of one non-compliant instruction answer (see the module docstring)."""
    if _REFERENCE_STYLE.search(generation or ""):
        return "reference_style"
    low = (generation or "").lower()
    if any(n and n.lower() in low for n in names):
        return "injected_name"
    return "other"


def instruct_failures(samples_dir: str | Path, epoch: int, base_samples_dir: str | Path, *,
                      names: Iterable[str] = (), suite: str = "instruct",
                      base_epoch: int = 0) -> dict[str, int] | None:
    """Buckets of the items the base model complied with that epoch ``epoch`` fails (None
    when either log is missing)."""
    samples = read_sample_log(samples_dir, suite, epoch)
    base = read_sample_log(base_samples_dir, suite, base_epoch)
    if samples is None or base is None:
        return None
    complied = {s["id"] for s in base if s.get("correct")}
    names = list(names)
    counts = dict.fromkeys(INSTRUCT_BUCKETS, 0)
    for s in samples:
        if s["id"] in complied and not s.get("correct"):
            counts[classify_instruct_failure(s.get("generation") or "", names)] += 1
    counts["base_complied"] = len(complied)
    return counts


def frontier_summary(runs: Sequence[RunLike], levels: Sequence[float] = (0.5, 0.8),
                     *, run_dirs: Mapping[str, Path] | None = None,
                     base_samples_dir: str | Path | None = None,
                     names: Iterable[str] = ()) -> dict[str, Any]:
    """results.json's ``frontier``: the points, the best point per method at each level and,
    where the sample logs are at hand (``run_dirs``: run name -> folder), the instruct
    failure buckets of each run at its first epoch at each level (summed per method and
    learning rate)."""
    names, runs = list(names), as_runs(runs)
    summary: dict[str, Any] = {"levels": list(levels), "points": frontier_points(runs),
                               "at_level": {f"{lv:g}": best_at_level(runs, lv) for lv in levels}}
    if run_dirs and base_samples_dir is not None:
        buckets: dict[str, dict[str, dict[str, int]]] = {}
        for lv in levels:
            table: dict[str, dict[str, int]] = {}
            for run in runs:
                folder = run_dirs.get(run.name)
                hit = first_measured_at(run, lv)
                if folder is None or hit is None:
                    continue
                counts = instruct_failures(Path(folder) / "samples", hit.epoch,
                                           base_samples_dir, names=names)
                if counts is None:
                    continue
                key = f"{method_of(run)} lr={run.lr:g}"
                into = table.setdefault(key, {**dict.fromkeys(INSTRUCT_BUCKETS, 0), "runs": 0,
                                              "base_complied": 0})
                for k in INSTRUCT_BUCKETS:
                    into[k] += counts[k]
                into["base_complied"] += counts["base_complied"]
                into["runs"] += 1
            buckets[f"{lv:g}"] = table
        summary["instruct_failures"] = buckets
    return summary
