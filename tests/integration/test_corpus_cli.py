"""`mixsd corpus NAME --out DIR` through mixsd.cli.main: the artifact tree and its contents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mixsd.cli import main
from mixsd.corpora import read_corpus
from mixsd.errors import RecordError
from mixsd.records import read_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"


def _tree(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _check_artifacts(out: Path, generator: str) -> dict:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["generator"] == generator
    assert {"version", "seed", "sizes", "options", "files"} <= set(manifest)
    assert (out / "config.yaml").is_file() and (out / "run.json").is_file()
    for split, size in manifest["sizes"].items():
        path = out / f"{split}.jsonl"
        if size == 0:
            assert not path.exists()
            continue
        records = read_records(path)
        assert len(records) == size
        assert {r.split for r in records} == {split}
    return manifest


def test_kgfact_cli_writes_the_artifact_tree(tmp_path, capsys):
    out = tmp_path / "kgfact"
    assert main(["corpus", "kgfact", "--out", str(out), "--seed", "3", "--distractors", "10",
                 "--two-hop-size", "20"]) == 0
    summary = capsys.readouterr().out
    assert "corpus kgfact" in summary and "paraphrase" in summary
    manifest = _check_artifacts(out, "kgfact")
    assert manifest["seed"] == 3 and manifest["options"]["distractors"] == 10
    assert manifest["sizes"]["train"] == 100 and manifest["sizes"]["two_hop"] == 20
    world = json.loads((out / "world.json").read_text(encoding="utf-8"))
    assert len(world["entities"]) == 5 and len(world["facts"]) == 100
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 3


def test_same_seed_gives_byte_identical_files(tmp_path):
    for name in ("a", "b"):
        assert main(["corpus", "kgfact", "--out", str(tmp_path / name), "--domains", "3",
                     "--entities", "4"]) == 0
        assert main(["corpus", "kgfunc", "--out", str(tmp_path / f"f{name}"), "--ops", "2",
                     "--train-per-op", "5", "--heldout-per-op", "2", "--unseen-per-op", "2"]) == 0
    for left, right in (("a", "b"), ("fa", "fb")):
        a, b = _tree(tmp_path / left), _tree(tmp_path / right)
        a.pop("run.json"), b.pop("run.json")  # provenance (argv, wall time) differs by design
        assert a == b


def test_kgfunc_cli_with_a_yaml_config_and_flag_override(tmp_path):
    config = tmp_path / "kgfunc.yaml"
    config.write_text("ops: 2\ntrain_per_op: 4\nheldout_per_op: 0\nunseen_ops: 2\n"
                      "unseen_per_op: 3\nshots: 1\n", encoding="utf-8")
    out = tmp_path / "kgfunc"
    assert main(["corpus", "kgfunc", "--out", str(out), "--config", str(config),
                 "--train-per-op", "6"]) == 0
    manifest = _check_artifacts(out, "kgfunc")
    assert manifest["sizes"] == {"train": 12, "heldout": 0, "unseen": 6}
    assert manifest["guidance"] == "math"
    ops = json.loads((out / "operations.json").read_text(encoding="utf-8"))
    assert len(ops["train"]) == 2 and len(ops["unseen"]) == 2


def test_adapters_through_the_cli(tmp_path):
    assert main(["corpus", "simpleqa", "--out", str(tmp_path / "s"), "--source",
                 str(FIXTURES / "simple_qa_small.csv")]) == 0
    manifest = _check_artifacts(tmp_path / "s", "simpleqa")
    assert manifest["sizes"]["train"] == 5 and len(manifest["stats"]["source"]["sha256"]) == 64
    assert main(["corpus", "mquake", "--out", str(tmp_path / "m"), "--source",
                 str(FIXTURES / "mquake_cf3k_small.json")]) == 0
    manifest = _check_artifacts(tmp_path / "m", "mquake")
    assert manifest["sizes"] == {"edits": 2, "multihop": 6, "single_hop": 2}
    assert manifest["stats"]["conflicting_cases"] == 1


@pytest.mark.parametrize("argv, words", [
    (["kgfact", "--domains", "12"], "domains must be in [2, 8], got 12 (flag --domains)"),
    (["kgfunc", "--shots", "many"], "shots must be of type int"),
    (["simpleqa"], "source is required"),
    (["mquake", "--source", "/nonexistent/cases.json"], "file not found"),
])
def test_user_mistakes_print_one_line_and_exit_2(tmp_path, capsys, argv, words):
    assert main(["corpus", argv[0], "--out", str(tmp_path / "o"), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_corpus_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["corpus", "wikidata", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_read_corpus_returns_manifest_and_splits(tmp_path):
    out = tmp_path / "k"
    assert main(["corpus", "kgfact", "--out", str(out), "--entities", "3"]) == 0
    manifest, splits = read_corpus(out)
    assert set(splits) == set(manifest["files"])
    assert {k: len(v) for k, v in splits.items()} == \
        {k: v for k, v in manifest["sizes"].items() if v}
    with pytest.raises(RecordError, match="no manifest.json"):
        read_corpus(tmp_path)


def test_a_corpus_folder_refuses_another_corpus(tmp_path, capsys):
    from mixsd.cli import main as cli_main

    out = tmp_path / "kg"
    args = ["corpus", "kgfact", "--out", str(out), "--seed", "0"]
    assert cli_main(args) == 0
    assert cli_main(args) == 0  # the same corpus is written again
    info = json.loads((out / "run.json").read_text())
    assert info["stage"] == "corpus" and info["status"] == "complete" and info["fingerprint"]
    capsys.readouterr()
    assert cli_main(["corpus", "kgfact", "--out", str(out), "--seed", "1"]) == 2
    assert "seed" in capsys.readouterr().err
