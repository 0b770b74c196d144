"""Mean ± spread over seeds, and the equal-memorisation comparison at a fixed level."""

import math

from mixsd.evaluation.results import RunId, group_name, make_run, mean_spread
from mixsd.report.tables import (
    equal_memorization_groups_table,
    equal_memorization_table,
    groups_table,
)


def _run(method, seed, curve, retention):
    epochs = [{"memorization": m, "retention_mean": r} for m, r in zip(curve, retention)]
    return make_run(RunId(method, None, 1e-3, seed, f"{method} lr=0.001 seed={seed}"),
                    epochs).to_json()


def test_mean_spread_and_group_name():
    assert mean_spread([1.0, 3.0, None]) == (2.0, math.sqrt(2.0), 2)
    assert mean_spread([5.0]) == (5.0, None, 1)
    assert mean_spread([None]) == (None, None, 0)
    assert group_name({"name": "mixsd:0.5@toy-own lr=0.001 seed=12", "method": "mixsd"}) == \
        "mixsd:0.5@toy-own lr=0.001"


def test_a_run_that_never_reaches_the_level_is_listed_not_lowering_it():
    runs = [_run("sft", 0, [0.5, 0.85, 0.9], [50, 40, 30]),
            _run("sft", 1, [0.6, 0.9, 0.95], [60, 20, 10]),
            _run("opsd", 0, [0.1, 0.2, 0.15], [90, 80, 85])]
    per_run = equal_memorization_table(runs, 0.8)
    rows = {r[0]: r for r in per_run.rows}
    assert rows["sft lr=0.001 seed=0"][1:] == ["2", "85.0", "40.0"]
    assert rows["opsd lr=0.001 seed=0"][2] == "never reached (best 20.0)"
    grouped = {r[0]: r for r in equal_memorization_groups_table(runs, 0.8).rows}
    assert grouped["sft lr=0.001"][1:4] == ["2/2", "2.0 ± 0.0", "30.0 ± 14.1"]
    assert grouped["opsd lr=0.001"][1:] == ["0/1", "–", "–", "20.0"]


def test_groups_table_reports_first_peak_and_best_epoch_over_seeds():
    runs = [_run("sft", 0, [0.5, 0.4, 0.9], [50, 40, 30]),
            _run("sft", 1, [0.6, 0.9, 0.95], [60, 20, 10])]
    (row,) = groups_table(runs).rows
    assert row[:4] == ["sft lr=0.001", "2", "3.0 ± 0.0", "2.0 ± 1.4"]
    assert row[4] == "72.5 ± 31.8"          # first peaks: 50% (epoch 1) and 95% (epoch 3)
    assert row[6] == "92.5 ± 3.5"           # best epochs: 90% and 95%
