"""The frontier over a learning-rate grid: points, each method's best point at a level, the
instruct failure buckets, and their report tables."""

from __future__ import annotations

import json

import pytest

from mixsd.analysis.frontier import (
    best_at_level,
    classify_instruct_failure,
    first_measured_at,
    frontier_points,
    frontier_summary,
    instruct_failures,
    method_of,
)
from mixsd.report.tables import frontier_tables


def _run(method, lr, seed, curve):
    """curve: [(memorisation, retention_mean or None)] per epoch."""
    epochs = [{"epoch": i + 1, "memorization": m, "paraphrase": m / 2,
               "retention_mean": r, "retention": {} if r is None else {"general:120": r},
               "extra": {"eval_s": 10.0 if r is not None else 2.0,
                         "full_eval": 0.0 if r is None else 1.0}}
              for i, (m, r) in enumerate(curve)]
    return {"name": f"{method} lr={lr:g} seed={seed}", "label": method.replace(":", "-"),
            "method": method.split(":")[0], "lr": lr, "seed": seed, "epochs": epochs,
            "seconds": 100.0}


RUNS = [
    # sft: 1e-4 reaches 50% in every seed at retention 70/80/90; 3e-4 higher but one seed only
    _run("sft", 1e-4, 0, [(0.2, 95), (0.5, 70), (0.9, 50)]),
    _run("sft", 1e-4, 1, [(0.3, None), (0.6, 80), (0.85, 40)]),
    _run("sft", 1e-4, 2, [(0.55, 90), (0.7, None), (0.8, 60)]),
    _run("sft", 3e-4, 0, [(0.6, 99), (1.0, 30)]),
    _run("sft", 3e-4, 1, [(0.1, 95), (0.2, None)]),
    _run("sft", 3e-4, 2, [(0.2, 95), (0.3, None)]),
    # mixsd never reaches 80%
    _run("mixsd:0.3/word", 1e-4, 0, [(0.5, 95), (0.7, 90)]),
    _run("mixsd:0.3/word", 1e-4, 1, [(0.5, 85), (0.6, None)]),
    {"name": "memit seed=0", "method": "memit", "lr": None, "seed": 0,
     "epochs": [{"epoch": 1, "memorization": 0.1, "retention_mean": 99.0}]},
]


def test_points_are_the_measured_epochs_only():
    points = frontier_points(RUNS)
    assert len(points) == sum(1 for r in RUNS for e in r["epochs"]
                              if e.get("retention_mean") is not None)
    assert {p["method"] for p in points} == {"sft", "mixsd:0.3/word", "memit"}
    assert method_of(RUNS[6]) == "mixsd:0.3/word"


def test_first_measured_at_needs_retention_at_the_first_epoch_there():
    assert first_measured_at(RUNS[0], 0.5).epoch == 2
    assert first_measured_at(RUNS[1], 0.5).epoch == 2
    assert first_measured_at(RUNS[2], 0.6) is None  # first at 60% is epoch 2, not measured
    assert first_measured_at(RUNS[4], 0.5) is None  # never there


def test_the_best_point_needs_most_seeds_and_then_the_highest_retention():
    at50 = best_at_level(RUNS, 0.5)
    sft = at50["sft"]
    assert sft["by_lr"]["0.0001"]["seeds_reached"] == 3
    assert sft["by_lr"]["0.0003"]["seeds_reached"] == 1  # 99% retention, but one seed of 3
    best = sft["best"]
    assert best["lr"] == 1e-4 and best["retention_mean"] == pytest.approx(80.0)
    assert best["retention_sd"] == pytest.approx(10.0)
    assert best["epoch"] == pytest.approx((2 + 2 + 1) / 3)
    assert best["retention"]["general:120"] == pytest.approx(80.0)
    assert at50["mixsd:0.3/word"]["best"]["retention_mean"] == pytest.approx(90.0)
    assert "memit" not in at50  # no learning rate: not on the grid
    at80 = best_at_level(RUNS, 0.8)
    assert at80["mixsd:0.3/word"]["best"] is None
    assert at80["sft"]["best"]["lr"] == 1e-4
    assert at80["sft"]["best"]["retention_mean"] == pytest.approx(50.0)  # 50, 40, 60


def test_instruct_failures_count_only_what_the_base_model_got_right(tmp_path):
    base = tmp_path / "base" / "epoch-0"
    run = tmp_path / "run" / "samples" / "epoch-2"
    base.mkdir(parents=True)
    run.mkdir(parents=True)
    rows = [("a", True, "The answer is Zorbin.\n\n\\boxed{Zorbin}", False),
            ("b", True, "Zorbin Kallo is a town", False),
            ("c", True, "a very long answer", False),
            ("d", True, "yes", True),
            ("e", False, "The answer is 4", False)]  # the base model failed it too
    (base / "instruct.jsonl").write_text("".join(
        json.dumps({"id": i, "correct": ok, "generation": "x"}) + "\n" for i, ok, _, _ in rows))
    (run / "instruct.jsonl").write_text("".join(
        json.dumps({"id": i, "correct": ok, "generation": g}) + "\n" for i, _, g, ok in rows))
    counts = instruct_failures(tmp_path / "run" / "samples", 2, tmp_path / "base",
                               names=["Zorbin Kallo"])
    assert counts == {"reference_style": 1, "injected_name": 1, "other": 1, "base_complied": 4}
    assert instruct_failures(tmp_path / "run" / "samples", 3, tmp_path / "base") is None
    assert classify_instruct_failure("\\boxed{4}") == "reference_style"


def test_summary_and_its_tables():
    summary = frontier_summary(RUNS, (0.5, 0.8))
    assert set(summary["at_level"]) == {"0.5", "0.8"}
    results = {"runs": RUNS, "frontier": summary}
    tables = frontier_tables(results)
    titles = [t.title for t in tables]
    assert titles[0].startswith("Retention at 50% memorisation")
    assert titles[-1] == "Seconds per epoch, by stage"
    row = next(r for r in tables[0].rows if r[0] == "sft")
    assert row[1:4] == ["0.0001", "3/3", "1.7"] and row[5] == "80.0 ± 10.0"
    never = next(r for r in tables[1].rows if r[0] == "mixsd:0.3/word")
    assert never[2] == "none"
    seconds = next(r for r in tables[-1].rows if r[0] == "sft")
    assert seconds[2] == "10.0 ± 0.0" and seconds[3] == "2.0 ± 0.0"
    # one learning rate: no grid, no frontier tables
    assert frontier_tables({"runs": RUNS[:1], "frontier": summary}) == []


def test_typed_runs_and_results_json_dicts_give_the_same_frontier():
    """The frontier reads typed entries; a results.json ``runs`` list is read into them."""
    from mixsd.evaluation.schema import RunResult

    typed = [RunResult.from_json(r) for r in RUNS]
    assert frontier_summary(typed) == frontier_summary(RUNS)
    assert frontier_summary(typed)["points"]  # not two empty summaries
