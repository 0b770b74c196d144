"""`mixsd toy build` and `mixsd toy info` through the CLI, on an isolated MIXSD_HOME."""

import json

from mixsd.cli import main
from mixsd.toyworld import cache
from mixsd.toyworld.pretrain import ModelConfig, PretrainConfig
from mixsd.toyworld.world import WorldConfig

TINY = (WorldConfig(), ModelConfig(hidden=16, layers=1, heads=2, ffn=32, max_positions=64),
        PretrainConfig(steps=2, batch_size=2, block_size=32, warmup=1))


def test_build_installs_the_shipped_model_and_info_reports_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path))
    assert main(["toy", "build"]) == 0
    out = capsys.readouterr().out
    digest = cache.config_hash(*cache.toy_configs())
    assert str(tmp_path / f"toy-{digest}") in out and "seconds:" in out
    assert main(["toy", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"recall", "paraphrase", "in_context", "arithmetic", "build_seconds", "parameters",
            "path"} <= set(info)
    assert info["path"] == str(tmp_path / f"toy-{digest}") and info["n_items"] >= 200
    assert all(0.0 <= info[k] <= 1.0 for k in ("recall", "paraphrase", "in_context",
                                                "arithmetic"))


def test_forced_build_into_a_folder_and_measured_info(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cache, "toy_configs", lambda: TINY)
    out_dir = tmp_path / "built"
    assert main(["toy", "build", "--force", "--out", str(out_dir), "--n-items", "2",
                 "--threads", "1"]) == 0
    assert str(out_dir) in capsys.readouterr().out
    assert json.loads((out_dir / "manifest.json").read_text())["train"]["threads"] == 1
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "manifest.json").is_file()
    assert main(["toy", "info", "--json", "--measure", "--n-items", "3", "--model",
                 str(out_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_items"] == 3 and info["parameters"] > 0


def test_info_on_a_folder_without_manifest_is_a_clear_error(tmp_path, capsys):
    assert main(["toy", "info", "--model", str(tmp_path)]) == 2
    assert "manifest" in capsys.readouterr().err


def test_bad_thread_count_is_a_clear_error(capsys):
    assert main(["toy", "build", "--threads", "0"]) == 2
    assert "threads must be in [1, inf], got 0 (flag --threads)" in capsys.readouterr().err
