"""docs/scale.md stays true: its computed table is bench/scale_memory.py's output, and every
mixsd command of its 8-GPU block parses into a valid config (no flag that does not exist)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scale.md"


def _script():
    spec = importlib.util.spec_from_file_location("scale_memory",
                                                  ROOT / "bench" / "scale_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_formula_equals_a_built_qwen3(tied, monkeypatch):
    module = _script()
    small = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=500,
                 tie_word_embeddings=tied)
    monkeypatch.setitem(module.ARCHITECTURES, "small", small)
    found = module.counts("small")
    assert {k: found[k] for k in ("params", "lora")} == module.counts_of_model(small)


def test_computed_table_is_the_scripts_output():
    module = _script()
    found = re.search(r"<!-- computed-table: bench/scale_memory.py -->\n(.*?)\n"
                      r"<!-- /computed-table -->", DOC.read_text(), flags=re.S)
    assert found is not None and found.group(1).strip() == module.table().strip()


# The block's shell variables, as one iteration of its loops sets them.
SHELL = {"$((i % 8))": "0", "$MODEL": "Qwen/Qwen3-8B", "$T": "mixsd-0.3", "$K": "1",
         "$S": "0"}


def _commands() -> list[list[str]]:
    (block,) = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    text = block.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.split("#")[0]
        if " mixsd " not in f" {line} " and "-m mixsd" not in line:
            continue
        for var, value in SHELL.items():
            line = line.replace(var, value)
        words = shlex.split(line.replace("&", ""))
        start = words.index("mixsd") + 1
        verb_args = [w for w in words[start:] if w not in (";", "done", "do")]
        found.append(verb_args)
    return found


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: a[0])
def test_every_documented_command_parses(argv, tmp_path, monkeypatch):
    from mixsd.cli import build_parser
    from mixsd.compare.config import CompareConfig
    from mixsd.training.config import TrainConfig

    verb, rest = argv[0], argv[1:]
    if verb in ("corpus", "report"):
        build_parser(verb)[0].parse_args(rest)
        return
    args = build_parser(verb)[0].parse_args(rest)
    # the corpus folder the commands name exists on the node (made by `mixsd corpus`)
    (tmp_path / "data" / "kgfact").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    if verb == "train":
        config = TrainConfig.from_args(args)
        assert config.deepspeed == "docs/scale/ds_zero3.json"
        assert (ROOT / config.deepspeed).is_file() and config.evaluates_checkpoint
    elif verb == "compare":
        assert CompareConfig.from_args(args).eval.lmeval_chat_template
    elif verb == "eval":
        from mixsd.evaluation.config import EvalConfig

        assert EvalConfig.from_args(args).lmeval_gen_kwargs == {"max_gen_toks": 1024}
    else:
        from mixsd.targets.config import TargetsConfig

        TargetsConfig.from_args(args)
