"""The typed results.json entries: file order kept, old files read, the report reads an old file."""

from __future__ import annotations

import json
from pathlib import Path

from mixsd.evaluation.results import RunId, make_base, make_results, make_run, target_summaries
from mixsd.evaluation.schema import EpochResult, RunResult, TargetsSummary
from mixsd.report import write_report

OLD = Path(__file__).parents[2] / "fixtures" / "old_results_demo.json"  # docs/demo, 1ea47cb


def _epochs():
    return [{"memorization": m, "score/s": 0.4, "split/train": m, "train_loss": 1.0}
            for m in (0.2, 0.6, 0.5)]


def test_run_result_writes_the_keys_in_file_order_and_round_trips():
    run = make_run(RunId("mixsd", 0.5, 1e-3, 0), _epochs(), base_scores={"s": 0.5},
                   label="mixsd-0.5", guidance="knowledge")
    run = run.updated(error_buckets={}, fisher={"total": 1.0}, seconds=2.0)
    obj = run.to_json()
    assert list(obj) == [*RunResult.KEYS, "label", "guidance", "error_buckets"]
    assert obj["lambda"] == 0.5 and obj["selected_epoch"] == 2 and obj["seconds"] == 2.0
    assert RunResult.from_json(json.loads(json.dumps(obj))) == run
    assert run.epoch(2) == EpochResult.from_json(obj["epochs"][1])
    assert run.get("label") == "mixsd-0.5" and run.get("lambda") == 0.5


def test_old_entries_read_with_their_alias_and_defaults():
    run = RunResult.from_json({"method": "mixsd", "mix_lambda": 0.3, "lr": 1e-5, "seed": 1,
                               "selected_epoch": 1, "epochs": [{"epoch": 1}]})
    assert run.name == "mixsd:0.3 lr=1e-05 seed=1" and run.mix_lambda == 0.3
    assert run.best_epoch is None and run.epochs[0].scores == {} and run.more == {}


def test_targets_summary_leaves_out_an_empty_realised_lambda():
    got = target_summaries({"sft": [{"records": 4, "wall_s": 1.0}],
                            "mixsd-0.5": [{"realised_lambda": {"0.5": {"verified": 2}}}]})
    assert "realised_lambda" not in got["sft"].to_json()
    assert got["mixsd-0.5"].realised_lambda == {"0.5": {"verified": 2, "unverified": 0}}
    assert TargetsSummary.from_json(got["sft"].to_json()) == got["sft"]
    results = make_results(make_base({"s": 0.5}), [make_run(RunId("sft"), _epochs())],
                           model="m", targets=got, wall_s=1.0)
    assert list(results)[4:7] == ["model", "targets", "wall_s"]
    assert results["targets"]["sft"]["files"] == 1


def test_the_report_reads_an_old_results_file(tmp_path):
    old = json.loads(OLD.read_text())
    assert "best_epoch" not in old["runs"][0]  # written before the field existed
    write_report([OLD], tmp_path)
    md = (tmp_path / "report.md").read_text()
    for run in old["runs"]:
        assert run["name"] in md
    assert {p.name for p in tmp_path.glob("*.png")} >= {"frontier.png", "epochs.png", "nll.png"}
