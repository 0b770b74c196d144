"""`mixsd inject` end to end on a tiny random model: the budget selects the epoch, an
impossible budget ends with a clear message and the best model found, and the written model
folder loads with plain transformers.

A random model can neither write a verifiable MixSD target nor learn on cue, so two pieces
are stood in for: the targets are y* (method sft, a real targets stage) and the evaluator
returns a scripted curve per try and epoch. Training, stopping, selection, the tries, the
model folder, the card and the report are the real ones. The whole recipe on the toy model,
confirmed by `mixsd eval`, is the slow test at the end.
"""

import json
from pathlib import Path

import pytest
import torch

from mixsd.cli import main
from mixsd.injection import InjectConfig, Injection
from mixsd.targets.config import TargetsConfig
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer
from mixsd.training.keep import is_pruned

FACTS = [("where was alice born ?", "the answer is oslo .", "oslo"),
         ("where was bob born ?", "the answer is lima .", "lima"),
         ("where was carol born ?", "the answer is rome .", "rome"),
         ("where was dave born ?", "bob was born there .", "paris")]  # y* lacks the key


def _sft_targets(self):
    return TargetsConfig(model=self.model, method="sft", guidance=self.resolved_guidance(),
                         progress=False)


def _script(monkeypatch, curves):
    """The evaluator answers ``curves[TRY][epoch] = (memorisation, probe score)``; the base
    model memorises nothing and scores 1.0 on its known set."""
    def evaluator(self, samples_dir, *, against_base=True):
        run = Path(samples_dir).parent.name if against_base else "base"
        def call(model, tokenizer, epoch):
            mem, kept = (0.0, 1.0) if run == "base" else curves[run][epoch]
            row = {"memorization": mem}
            for name in self.suites:
                row[f"score/{name}"] = kept
                if against_base:
                    row[f"retained/{name}"] = 100.0 * kept
            return row
        return call
    monkeypatch.setattr(Injection, "evaluator", evaluator)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(InjectConfig, "targets_config", _sft_targets)
    tok = tiny_tokenizer()
    model_dir = save_tiny(tmp_path / "model", tiny_llama(tok, hidden=32), tok)
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"id": f"f{i}", "prompt": q, "answer": a,
                                        "answer_key": k}) + "\n"
                            for i, (q, a, k) in enumerate(FACTS)))
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"{w} is the city of",
                                        "answer": "red", "answer_key": "red"}) + "\n"
                            for i, w in enumerate(["alice", "bob", "erin"])))
    def argv(out, *extra):
        return ["inject", "--model", model_dir, "--data", str(data), "--out", str(out),
                "--no-default-probes", "--probe", f"records:{held}", "--lr", "1e-2",
                "--batch-size", "2", "--eval-batch-size", "8", "--max-new-tokens", "4",
                "--device", "cpu", *extra]
    return argv, data


def _weights(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def _loads_without_mixsd(folder):
    """Plain transformers in a fresh process where ``import mixsd`` fails."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['mixsd'] = None\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
            f"m = AutoModelForCausalLM.from_pretrained({str(folder)!r})\n"
            f"t = AutoTokenizer.from_pretrained({str(folder)!r})\n"
            "print(type(m).__name__, len(t))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("LlamaForCausalLM")


@pytest.mark.parametrize("lora", [False, True])
def test_the_most_memorised_epoch_within_the_budget_is_shipped(setup, tmp_path, monkeypatch,
                                                                capsys, lora):
    argv, data = setup
    # epoch 3 memorises most but falls below 90%: the try stops there and ships epoch 2
    _script(monkeypatch, {"try-1": {1: (0.25, 0.97), 2: (0.5, 0.93), 3: (0.75, 0.85),
                                    4: (0.8, 0.99)}})
    out = tmp_path / "out"
    assert main(argv(out, "--retain", "0.9", "--epochs", "6",
                     *(["--lora"] if lora else []))) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("budget met") and "try 1 lr 0.01, epoch 2" in printed
    summary = json.loads((out / "inject.json").read_text())
    assert summary["budget_met"] and summary["selected"] == {"try": 1, "lr": 0.01, "epoch": 2}
    (attempt,) = summary["tries"]
    assert [r["epoch"] for r in attempt["epochs"]] == [1, 2, 3]  # stopped below the budget
    assert [r["within_budget"] for r in attempt["epochs"]] == [True, True, False]
    assert attempt["stopped"].startswith("below the budget at epoch 3")
    assert summary["memorization"] == 0.5
    probe = f"known:records:{data.parent / 'held.jsonl'}"
    assert summary["probes"][probe]["retained"] == pytest.approx(93.0)
    # the fact whose y* lacks its key is listed, not silently dropped
    assert [u["id"] for u in summary["unverified"]] == ["f3"]
    assert summary["facts"]["sha256"] and summary["facts"]["bytes"] == data.stat().st_size
    # the model folder: plain transformers loads it, and it is the selected epoch's weights
    model_dir = out / "model"
    assert not (model_dir / "adapter_config.json").exists()
    run = out / "tries" / "try-1"
    assert is_pruned(run / "epoch-3") and not is_pruned(run / "epoch-2")
    shipped = _weights(model_dir)
    if not lora:
        expected = _weights(run / "epoch-2")
        assert all(torch.equal(shipped[k], expected[k]) for k in expected)
        _loads_without_mixsd(model_dir)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(model_dir)("where was alice born ?")["input_ids"]
    card = (model_dir / "README.md").read_text()
    assert "Budget met" in card and summary["facts"]["sha256"] in card and probe in card
    assert "mixsd eval --model" in card
    report = (out / "report.md").read_text()
    assert "Facts whose targets never verified (1)" in report and "dave" in report
    assert (out / "epochs.png").stat().st_size > 1000
    # the same command again: nothing is trained, the summary comes back
    monkeypatch.setattr("mixsd.training.train", lambda *a, **k: pytest.fail("retrained"))
    assert main(argv(out, "--retain", "0.9", "--epochs", "6",
                     *(["--lora"] if lora else []))) == 0
    assert capsys.readouterr().out.startswith("already complete: budget met")
    # and another budget in the same folder is refused, naming it
    assert main(argv(out, "--retain", "0.8", "--epochs", "6")) == 2
    assert "other values of" in capsys.readouterr().err


def test_an_impossible_budget_ends_with_the_best_model_found(setup, tmp_path, monkeypatch,
                                                              capsys):
    argv, _ = setup
    # every try falls below the budget at its first epoch; try 2 comes closest
    _script(monkeypatch, {"try-1": {1: (0.5, 0.80)}, "try-2": {1: (0.25, 0.85)},
                          "try-3": {1: (0.25, 0.70)}})
    out = tmp_path / "out"
    assert main(argv(out, "--retain", "0.9", "--tries", "3")) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("budget NOT met: no epoch of 3 tries kept every probe")
    assert "wrote the best model found (try 2 lr 0.005, epoch 1" in printed
    summary = json.loads((out / "inject.json").read_text())
    assert not summary["budget_met"] and summary["selected"]["try"] == 2
    assert [t["lr"] for t in summary["tries"]] == [0.01, 0.005, 0.0025]
    assert all(not t["met"] and len(t["epochs"]) == 1 for t in summary["tries"])
    expected = _weights(out / "tries" / "try-2" / "epoch-1")
    shipped = _weights(out / "model")
    assert all(torch.equal(shipped[k], expected[k]) for k in expected)
    assert "Budget NOT met" in (out / "model" / "README.md").read_text()


def test_a_killed_injection_resumes_where_it_stopped(setup, tmp_path, monkeypatch, capsys):
    import mixsd.injection as injection

    argv, _ = setup
    curves = {"try-1": {1: (0.5, 0.8)}, "try-2": {1: (0.25, 0.95), 2: (0.25, 0.8)}}
    _script(monkeypatch, curves)
    calls = []
    scripted = Injection.evaluator

    def counting(self, samples_dir, *, against_base=True):
        inner = scripted(self, samples_dir, against_base=against_base)
        def call(model, tokenizer, epoch):
            calls.append((Path(samples_dir).parent.name, epoch))
            if calls[-1] == ("try-2", 2) and len(calls) == 4:
                raise KeyboardInterrupt  # killed while evaluating try 2's second epoch
            return inner(model, tokenizer, epoch)
        return call
    monkeypatch.setattr(Injection, "evaluator", counting)
    out = tmp_path / "out"
    assert main(argv(out, "--retain", "0.9", "--epochs", "3")) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    assert main(argv(out, "--retain", "0.9", "--epochs", "3")) == 0
    # base and try 1 are not evaluated again; try 2 resumes after its first epoch
    assert calls == [("out", 0), ("try-1", 1), ("try-2", 1), ("try-2", 2), ("try-2", 2)]
    summary = json.loads((out / "inject.json").read_text())
    assert summary["budget_met"] and summary["selected"] == {"try": 2, "lr": 0.005, "epoch": 1}
    assert injection.SUMMARY == "inject.json"


def test_adapter_only_ships_the_adapter(setup, tmp_path, monkeypatch, capsys):
    argv, _ = setup
    _script(monkeypatch, {"try-1": {1: (0.25, 1.0), 2: (0.25, 1.0), 3: (0.25, 1.0)}})
    out = tmp_path / "out"
    assert main(argv(out, "--retain", "0.9", "--epochs", "3", "--patience", "1", "--lora",
                     "--adapter-only")) == 0
    assert (out / "model" / "adapter_config.json").is_file()
    assert not (out / "model" / "model.safetensors").exists()
    summary = json.loads((out / "inject.json").read_text())
    assert summary["selected"]["epoch"] == 1 and len(summary["tries"][0]["epochs"]) == 2


def test_dry_run_prints_the_plan_and_writes_nothing(setup, tmp_path, capsys):
    argv, _ = setup
    out = tmp_path / "out"
    assert main(argv(out, "--retain", "0.9", "--dry-run")) == 0
    printed = capsys.readouterr().out
    assert "plan (dry run" in printed and "4 from" in printed and "estimate:" in printed
    assert "up to 3 tries at lr 0.01, 0.005, 0.0025" in printed
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--adapter-only"], "adapter_only needs lora"),
    (["--retain", "1.5"], "retain must be in [0, 1]"),
    (["--probe", "nonsense"], "unknown suite 'nonsense'"),
])
def test_mistakes_are_one_line(setup, tmp_path, capsys, extra, message):
    argv, _ = setup
    assert main(argv(tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_the_toy_model_and_an_independent_eval_agree(tmp_path, monkeypatch, capsys):
    """The real recipe on the toy model (targets, known sets, evaluation), and `mixsd eval`
    of the shipped folder measuring what the card states."""
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    out = tmp_path / "inj"
    assert main(["inject", "--model", "toy", "--data", "toy", "--n-facts", "8",
                 "--eval-items", "12", "--epochs", "2", "--tries", "1", "--retain", "0.5",
                 "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads((out / "inject.json").read_text())
    capsys.readouterr()
    command = summary["eval_command"].split()
    assert main(command[1:]) == 0
    scores = json.loads((out / "eval" / "scores.json").read_text())
    for name, probe in summary["probes"].items():
        assert scores["retention"][name] == pytest.approx(probe["retained"])
    mem = next(v for k, v in scores["scores"].items() if k.startswith("records:"))
    assert mem == pytest.approx(summary["memorization"])
