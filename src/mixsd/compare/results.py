"""The results assembly of a comparison: its runs, the equal-memorisation comparison, the
targets' summaries, the frontier, MEMIT's own measure, then ``results.json`` and the report.

The schema of ``results.json`` is :mod:`mixsd.evaluation.results`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mixsd.analysis.frontier import frontier_summary
from mixsd.artifacts import COMPLETE, StageDir
from mixsd.compare.config import CompareConfig
from mixsd.compare.context import Comparison
from mixsd.compare.memit import memit_efficacy
from mixsd.evaluation.buckets import injected_names
from mixsd.evaluation.results import (
    make_results,
    retention_at_equal_memorization,
    target_summaries,
    write_results,
)
from mixsd.evaluation.schema import RunResult, TargetsSummary
from mixsd.io import folder_bytes
from mixsd.report import write_report
from mixsd.targets.run import targets_run_info

# The memorisation levels at which results.json's frontier compares methods (50% and 80%).
FRONTIER_LEVELS = (0.5, 0.8)


def targets_summary(path: Path) -> dict[str, Any]:
    """The summary a targets run recorded (its folder's run.json, or an old file's sidecar;
    ``{}`` when there is none)."""
    return targets_run_info(path).get("summary") or {}


def frontier_of(cmp: Comparison, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json's ``frontier`` (:func:`mixsd.analysis.frontier.frontier_summary`): every
    measured (lr, seed, epoch) point and each method's best point at 50% and 80%
    memorisation, with the instruct failure buckets read from the runs' sample logs."""
    run_dirs = {r["name"]: cmp.out / "runs" / f"{r['label']}-lr{r['lr']:g}-s{r['seed']}"
                for r in runs if r.get("lr") is not None and r.get("label")}
    return frontier_summary(runs, FRONTIER_LEVELS, run_dirs=run_dirs,
                            base_samples_dir=cmp.out / "base_samples",
                            names=injected_names(cmp.records))


def _targets_summaries(cmp: Comparison) -> dict[str, TargetsSummary]:
    files: dict[str, list[Path]] = {}  # each method's targets files, once each
    for (label, _), path in cmp.targets.items():
        if path not in files.setdefault(label, []):
            files[label].append(path)
    return target_summaries({label: [targets_summary(p) for p in paths]
                             for label, paths in files.items()})


def collect_results(cmp: Comparison, runs: list[RunResult], start: float,
                    **extra: Any) -> dict[str, Any]:
    """results.json of a comparison's runs: the equal-memorisation comparison, the targets'
    summaries, the analyses, disk use and seconds (``extra``: more top-level keys)."""
    config = cmp.config
    rows = [r.to_json() for r in runs]  # the analyses read runs as results.json holds them
    level, at_level = retention_at_equal_memorization(rows, config.equal_memorization)
    extra.setdefault("frontier", frontier_of(cmp, rows))
    edits = {r.name: memit_efficacy(cmp, r) for r in runs if r.method == "memit"}
    if any(v is not None for v in edits.values()):
        extra.setdefault("memit_efficacy", edits)
    return make_results(cmp.base, runs, config=config.to_dict(), model=config.model,
                        corpus=config.corpus, target_nll=cmp.nll,
                        equal_memorization={"level": level, "retention_mean": at_level},
                        targets=_targets_summaries(cmp), disk_bytes=folder_bytes(cmp.out),
                        wall_s=round(time.perf_counter() - start, 3), **extra)


def finish(config: CompareConfig, out: Path, results: dict[str, Any], start: float,
           stage: StageDir) -> dict[str, Any]:
    """Write results.json and the report, mark the comparison's ``stage`` complete (an
    overwrite's old folder is deleted now); the summary of :func:`mixsd.compare.run_compare`."""
    results_path = write_results(out / "results.json", results)
    report_path = write_report([results_path], out / "report") if config.report else None
    wall_s = time.perf_counter() - start
    stage.write_info(config, status=COMPLETE, wall_s=round(wall_s, 3))
    stage.commit()
    return {"results": results, "results_path": results_path, "report_path": report_path,
            "wall_s": wall_s}
