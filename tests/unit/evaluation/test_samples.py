from types import SimpleNamespace

from mixsd.evaluation.samples import read_sample_log, sample_log_path, write_sample_logs


def test_sample_log_path_is_one_rule_for_flat_and_per_epoch_logs(tmp_path):
    assert sample_log_path(tmp_path, "lm-eval:arc/easy") == tmp_path / "lm-eval_arc_easy.jsonl"
    assert sample_log_path(tmp_path, "memorization", 3) == (
        tmp_path / "epoch-3" / "memorization.jsonl")


def test_sample_logs_round_trip_and_a_missing_log_is_none(tmp_path):
    results = {"toy:recall": SimpleNamespace(samples=[{"id": "a", "generation": "x"}]),
               "empty": SimpleNamespace(samples=[]), "no-samples": object()}
    write_sample_logs(tmp_path, results, epoch=2)
    assert read_sample_log(tmp_path, "toy:recall", 2) == [{"id": "a", "generation": "x"}]
    assert read_sample_log(tmp_path, "empty", 2) == []
    assert read_sample_log(tmp_path, "no-samples", 2) == []
    assert read_sample_log(tmp_path, "toy:recall", 1) is None
    assert (tmp_path / "epoch-2" / "toy_recall.jsonl").is_file()
