"""The comparison's cache keys are what earlier comparisons wrote: a stopped grid resumes.

``tests/fixtures/frozen_keys.json`` holds the hashes computed, before the compare package
existed, for the shipped configs (configs/smollm2.yaml, the demo and rounds presets): the
comparison folder's fingerprint, the base scores' key, every run's entry key and every
targets config's fingerprint. A change that moves any of them would make every finished run
of an existing comparison train again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd.artifacts import fingerprint
from mixsd.compare.config import CompareConfig
from mixsd.compare.keys import base_fields, run_fields, targets_path
from mixsd.compare.plan import RunPlan, run_dir_name, targets_config, train_config

ROOT = Path(__file__).resolve().parents[3]
FROZEN = json.loads((ROOT / "tests" / "fixtures" / "frozen_keys.json").read_text())


def keys_of(config: CompareConfig) -> dict[str, str]:
    out = Path(config.out)
    found = {"comparison": fingerprint(config.decisive_dict()),
             "base": fingerprint(base_fields(config))}
    for spec, lr, seed in config.grid():
        run_dir = out / "runs" / run_dir_name(spec, lr, seed)
        if spec.kind == "memit":
            found[run_dir.name] = fingerprint(
                run_fields(config, config.memit_config(seed).decisive_dict()))
            continue
        targets = None if spec.kind == "opsd" else targets_path(config, spec, seed, out)
        plan = RunPlan(spec, lr, seed, "name", run_dir, out / "corpus" / "train.jsonl",
                       targets=targets)
        found[run_dir.name] = fingerprint(
            run_fields(config, train_config(config, plan, 0.0).decisive_dict()))
        if targets is not None:
            found[f"targets:{targets.name}"] = fingerprint(
                targets_config(config, spec, seed).fingerprint_dict())
    return found


@pytest.mark.parametrize("path", sorted(FROZEN))
def test_keys_of_the_shipped_configs_are_unchanged(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs name their files relative to the repository
    config = CompareConfig.from_yaml(path)
    assert keys_of(config) == FROZEN[path]
