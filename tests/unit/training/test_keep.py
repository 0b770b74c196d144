"""--keep: which epochs keep their weights; stubs keep metrics; a stub is never loaded."""

from __future__ import annotations

import json

import pytest

from mixsd.errors import ConfigError, MixsdError
from mixsd.training.keep import KeepPolicy, apply_keep, is_pruned, selected_epoch

WEIGHTS = ("model.safetensors", "config.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")


def _run(tmp_path, memorization):
    ckpts, metrics = [], []
    for epoch, value in enumerate(memorization, start=1):
        path = tmp_path / f"epoch-{epoch}"
        path.mkdir()
        for name in WEIGHTS:
            (path / name).write_bytes(b"x" * 100)
        row = {"epoch": epoch} if value is None else {"epoch": epoch, "memorization": value}
        (path / "metrics.json").write_text(json.dumps(row))
        (path / "mixsd_checkpoint.json").write_text(json.dumps({"epoch": epoch}))
        ckpts.append(path)
        metrics.append(row)
    return ckpts, metrics


def _full(ckpts):
    return [p.name for p in ckpts if (p / "model.safetensors").is_file()]


@pytest.mark.parametrize("text, policy", [
    ("selected,last", KeepPolicy(selected=True, last=True)), ("last", KeepPolicy(last=True)),
    (" Selected ", KeepPolicy(selected=True)), ("all", KeepPolicy(everything=True)),
    ("3", KeepPolicy(newest=3))])
def test_parse(text, policy):
    assert KeepPolicy.parse(text) == policy


@pytest.mark.parametrize("text", ["", "0", "best", "selected,first", "-1"])
def test_parse_refuses_naming_the_flag(text):
    with pytest.raises(ConfigError, match="--keep"):
        KeepPolicy.parse(text)


def test_selected_epoch_is_the_first_peak_above_the_floor():
    rows = [{"epoch": e, "memorization": m} for e, m in enumerate([0.1, 0.1, 0.5, 0.4, 0.6], 1)]
    assert selected_epoch(rows, floor=0.1) == 3
    assert selected_epoch([{"epoch": 1}, {"epoch": 2}]) is None  # nothing evaluated


def test_selected_epoch_under_a_budget_is_the_most_memorised_within_it():
    rows = [{"epoch": 1, "memorization": 0.3, "retained/a": 98.0},
            {"epoch": 2, "memorization": 0.6, "retained/a": 93.0},
            {"epoch": 3, "memorization": 0.9, "retained/a": 70.0}]
    assert selected_epoch(rows, floor=0.1, floors={"retained/a": 90.0}) == 2


def test_selected_and_last_during_and_after_training(tmp_path):
    ckpts, metrics = _run(tmp_path, [0.1, 0.5, 0.4, 0.6])
    policy = KeepPolicy.parse("selected,last")
    pruned = apply_keep(ckpts, metrics, policy, floor=0.0)
    assert [p.name for p in pruned] == ["epoch-1", "epoch-3"]
    assert _full(ckpts) == ["epoch-2", "epoch-4"]
    stub = tmp_path / "epoch-1"
    assert {p.name for p in stub.iterdir()} == {"metrics.json", "mixsd_checkpoint.json"}
    assert is_pruned(stub) and json.loads((stub / "metrics.json").read_text())["epoch"] == 1
    assert (tmp_path / "epoch-2" / "optimizer.pt").is_file()  # training may still resume
    apply_keep(ckpts, metrics, policy, floor=0.0, complete=True)
    assert _full(ckpts) == ["epoch-2", "epoch-4"]
    assert not (tmp_path / "epoch-4" / "optimizer.pt").exists()
    assert (tmp_path / "epoch-4" / "rng_state.pth").is_file()


def test_the_newest_epoch_survives_training_and_all_keeps_everything(tmp_path):
    (tmp_path / "a").mkdir()
    ckpts, metrics = _run(tmp_path / "a", [0.5, 0.4, 0.3])
    apply_keep(ckpts, metrics, KeepPolicy.parse("selected"))
    assert _full(ckpts) == ["epoch-1", "epoch-3"]  # epoch 3 only until the run completes
    apply_keep(ckpts, metrics, KeepPolicy.parse("selected"), complete=True)
    assert _full(ckpts) == ["epoch-1"]
    (tmp_path / "b").mkdir()
    ckpts, metrics = _run(tmp_path / "b", [None, None, None])
    apply_keep(ckpts, metrics, KeepPolicy.parse("selected"), complete=True)
    assert _full(ckpts) == ["epoch-3"]  # nothing selected: the last is kept, never nothing
    (tmp_path / "c").mkdir()
    ckpts, metrics = _run(tmp_path / "c", [0.1, 0.2, 0.3])
    apply_keep(ckpts, metrics, KeepPolicy.parse("all"), complete=True)
    assert _full(ckpts) == ["epoch-1", "epoch-2", "epoch-3"]
    assert (tmp_path / "c" / "epoch-3" / "optimizer.pt").is_file()
    apply_keep(ckpts, metrics, KeepPolicy.parse("2"), complete=True)
    assert _full(ckpts) == ["epoch-2", "epoch-3"]


def test_a_prune_cut_short_is_finished_and_a_stub_is_never_loaded(tmp_path):
    from mixsd.analysis.fisher import checkpoint_dirs
    from mixsd.training import load_checkpoint

    ckpts, metrics = _run(tmp_path, [0.1, 0.2])
    info = tmp_path / "epoch-1" / "mixsd_checkpoint.json"
    info.write_text(json.dumps({"epoch": 1, "pruned": True}))  # killed right after marking
    assert checkpoint_dirs([tmp_path]) == [tmp_path / "epoch-2"]
    with pytest.raises(MixsdError, match="--keep"):
        load_checkpoint(tmp_path / "epoch-1")
    apply_keep(ckpts, metrics, KeepPolicy.parse("last"))
    assert {p.name for p in (tmp_path / "epoch-1").iterdir()} == {"metrics.json",
                                                                  "mixsd_checkpoint.json"}
