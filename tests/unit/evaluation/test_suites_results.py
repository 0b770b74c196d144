import json

import pytest
import torch

from mixsd.errors import ConfigError, MixsdError, RecordError
from mixsd.evaluation.callback import make_epoch_evaluator
from mixsd.evaluation.mcq import MCQSuite
from mixsd.evaluation.qa import QASuite
from mixsd.evaluation.results import (
    RunId,
    epoch_entry,
    make_base,
    make_results,
    make_run,
    read_results,
    retention_at_equal_memorization,
    validate_results,
    write_results,
)
from mixsd.evaluation.suites import get_suites
from mixsd.records import KnowledgeRecord, write_records


class FixedAnswerLM(torch.nn.Module):
    """Answers every prompt with the same words (a hand-made prediction)."""

    def __init__(self, tok, answer):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.answer = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]

    def generate(self, input_ids, **kwargs):
        tail = torch.tensor([self.answer] * input_ids.shape[0])
        return torch.cat([input_ids, tail], dim=1)


@pytest.fixture
def corpus(tmp_path):
    recs = [KnowledgeRecord("r1", "where is alice born ?", "alice is born in paris", "paris",
                            paraphrases=["alice is born in what city ?", "what city ?"]),
            KnowledgeRecord("r2", "where does bob live ?", "bob lives in oslo", "oslo",
                            split="train"),
            KnowledgeRecord("r3", "where is the city of bob born ?", "paris", "paris",
                            split="2hop")]
    path = tmp_path / "eval_corpus.jsonl"
    write_records(path, recs)
    return path


def test_registry_resolves_file_suites(corpus, tmp_path):
    mcq = tmp_path / "eval_mcq.jsonl"
    mcq.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 0}) + "\n")
    suites = get_suites([f"records:{corpus},paraphrase:{corpus}", f"records:{corpus}@2hop",
                         f"math:{corpus}", f"mcq:{mcq}", "lmeval:some_task"], guidance="knowledge")
    assert list(suites) == [f"records:{corpus}", f"paraphrase:{corpus}",
                            f"records:{corpus}@2hop", f"math:{corpus}", f"mcq:{mcq}",
                            "lmeval:some_task"]
    assert [r.id for r in suites[f"records:{corpus}"].records] == ["r1", "r2"]
    para = suites[f"paraphrase:{corpus}"].records
    assert [(r.prompt, r.answer_key) for r in para] == [("alice is born in what city ?", "paris"),
                                                         ("what city ?", "paris")]
    assert [r.id for r in suites[f"records:{corpus}@2hop"].records] == ["r3"]
    math = suites[f"math:{corpus}"]
    assert isinstance(math, QASuite) and math.extractor == "math" and math.guidance == "math"
    assert isinstance(suites[f"mcq:{mcq}"], MCQSuite)
    assert suites["lmeval:some_task"].task == "some_task"


def test_registry_errors_name_the_flag(corpus):
    with pytest.raises(ConfigError, match="--suite"):
        get_suites("nonsense")
    with pytest.raises(ConfigError, match="--suite"):
        get_suites("math:")
    with pytest.raises(MixsdError, match="split 'nosuch'"):
        get_suites(f"records:{corpus}@nosuch")
    with pytest.raises(ConfigError, match=r"file not found: /nonexistent.jsonl \(flag --suite\)"):
        get_suites("records:/nonexistent.jsonl")


def test_epoch_evaluator_exact_scores_from_fixed_answers(corpus, tiny_tok):
    from mixsd.records import read_records

    records = read_records(corpus)
    retention = {"held": QASuite("held", [KnowledgeRecord("h1", "q", "paris", "paris"),
                                          KnowledgeRecord("h2", "q", "oslo", "oslo"),
                                          KnowledgeRecord("h3", "q", "rome", "rome"),
                                          KnowledgeRecord("h4", "q", "lima", "lima")])}
    evaluator = make_epoch_evaluator(retention, records, base_scores={"held": 0.5})
    model = FixedAnswerLM(tiny_tok, "it is paris")
    model.train()
    metrics = evaluator(model, tiny_tok, 1)
    assert model.training  # the evaluator restores training mode
    assert metrics["memorization"] == 0.5          # r1 right, r2 wrong
    assert metrics["paraphrase"] == 1.0            # both paraphrases of r1 -> paris
    assert metrics["split/2hop"] == 1.0
    assert metrics["score/held"] == 0.25
    assert metrics["retained/held"] == 50.0
    assert metrics["retention_mean"] == 50.0
    entry = epoch_entry(1, {**metrics, "train_loss": 0.7})
    assert entry.splits == {"2hop": 1.0}
    assert entry.extra["train_loss"] == 0.7 and "eval_s" in entry.extra
    assert entry.retention == {"held": 50.0}


def _epochs():
    return [{"memorization": 0.4, "score/s": 0.5, "paraphrase": 0.1},
            {"memorization": 0.9, "score/s": 0.4, "paraphrase": 0.3},
            {"memorization": 0.8, "score/s": 0.45, "paraphrase": 0.2}]


def test_make_run_selects_first_peak_and_results_round_trip(tmp_path):
    run = make_run(RunId("mixsd", 0.3, 1e-5, 0), _epochs(), base_scores={"s": 0.5}, target_nll=1.25,
                   fisher={"total": 2.0, "per_layer": {"layers.0": 2.0}}, seconds=3.0)
    assert run.name == "mixsd:0.3 lr=1e-05 seed=0"
    assert run.selected_epoch == 2
    assert run.memorization == 0.9 and run.paraphrase == 0.3
    assert run.retention == {"s": pytest.approx(80.0)}
    assert run.retention_mean == pytest.approx(80.0)
    sft = make_run(RunId("sft", None, 1e-5, 0), _epochs()[:1], base_scores={"s": 0.5}, seconds=1.0)
    results = make_results(make_base({"s": 0.5}, memorization=0.0), [run, sft],
                           config={"epochs": 3})
    path = write_results(tmp_path / "results.json", results)
    assert read_results(tmp_path)["runs"][0]["epochs"][1]["scores"] == {"s": 0.4}
    assert path.exists()
    level, table = retention_at_equal_memorization(results["runs"])
    assert level == 0.4
    assert table == {"mixsd:0.3 lr=1e-05 seed=0": pytest.approx(100.0),
                     "sft lr=1e-05 seed=0": pytest.approx(100.0)}


def test_validate_results_names_the_field(tmp_path):
    run = make_run(RunId("sft", None, 1e-5, 0), _epochs(), base_scores={"s": 0.5}).to_json()
    bad = {"base": make_base({}), "runs": [dict(run, selected_epoch=7)]}
    with pytest.raises(RecordError, match=r"runs\[0\]\.selected_epoch"):
        validate_results(bad)
    del run["retention"]
    with pytest.raises(RecordError, match=r"runs\[0\]\.retention"):
        validate_results({"base": {}, "runs": [run]})
    (tmp_path / "results.json").write_text("{nope")
    with pytest.raises(RecordError, match="invalid JSON"):
        read_results(tmp_path / "results.json")


def test_toy_suites_resolve_lazily_by_name():
    every = get_suites("toy", toy_items=3)
    assert list(every) == ["toy:recall", "toy:paraphrase", "toy:in_context", "toy:arithmetic"]
    assert all(len(s.records) == 3 and s.guidance == "toy" for s in every.values())
    one = get_suites("toy:arithmetic", toy_items=3)
    assert list(one) == ["toy:arithmetic"]
    assert one["toy:arithmetic"].fingerprint() == every["toy:arithmetic"].fingerprint()
    with pytest.raises(ConfigError, match="toy:recall"):
        get_suites("toy:nope")


def test_corpus_folder_splits(tmp_path):
    from mixsd.corpora import KGFactConfig, read_corpus, write_corpus
    from mixsd.evaluation.suites import memorization_suites

    folder = tmp_path / "kg"
    write_corpus("kgfact", KGFactConfig(size="small", seed=0), folder)
    _, splits = read_corpus(folder)
    suites = get_suites([f"records:{folder}", f"records:{folder}@two_hop",
                         f"paraphrase:{folder}", f"records:{folder / 'retrieval.jsonl'}"])
    assert len(suites[f"records:{folder}"].records) == len(splits["train"])
    assert len(suites[f"records:{folder}@two_hop"].records) == len(splits["two_hop"])
    assert len(suites[f"paraphrase:{folder}"].records) == len(splits["paraphrase"])
    # a split file holds no train records: all of its records are the suite
    assert len(suites[f"records:{folder / 'retrieval.jsonl'}"].records) == len(splits["retrieval"])
    with pytest.raises(MixsdError, match="no split 'nope'"):
        get_suites(f"records:{folder}@nope")
    every = [r for recs in splits.values() for r in recs]
    mem = memorization_suites(every)
    assert len(mem["memorization"].records) == len(splits["train"])
    assert len(mem["paraphrase"].records) == len(splits["paraphrase"]) + sum(
        len(r.paraphrases) for r in splits["train"])
    assert set(mem) == {"memorization", "paraphrase", *[s for s in splits
                                                        if s not in ("train", "paraphrase")]}


def test_drift_prompts_default_to_held_out_questions(tiny_tok, tiny_model):
    import copy

    from mixsd.evaluation.callback import held_out_prompts
    from mixsd.evaluation.drift import NEUTRAL_PROMPTS

    a = QASuite("a", [KnowledgeRecord(f"a{i}", f"alice {i} ?", "x", "x") for i in range(3)])
    b = QASuite("b", [KnowledgeRecord("b0", "bob ?", "x", "x")])
    assert held_out_prompts({"a": a, "b": b}, limit=3) == ["alice 0 ?", "bob ?", "alice 1 ?"]
    assert held_out_prompts({}) is None
    evaluator = make_epoch_evaluator({"a": a}, base_model=tiny_model, max_new_tokens=2)
    assert evaluator.drift_prompts == ["alice 0 ?", "alice 1 ?", "alice 2 ?"]
    assert make_epoch_evaluator({}, base_model=tiny_model).drift_prompts is None  # -> neutral
    metrics = evaluator(copy.deepcopy(tiny_model), tiny_tok, 1)
    assert metrics["drift_kl"] == pytest.approx(0.0, abs=1e-6)
    assert NEUTRAL_PROMPTS


def test_staged_evaluation_scores_everything_only_where_memorisation_reaches_a_level(
        corpus, tiny_tok):
    """Retention levels [0.5]: memorisation every epoch; the rest where memorisation first
    reaches 50% and at the last epoch, with the same scores as a full evaluation."""
    from mixsd.records import read_records

    records = read_records(corpus)
    held = {"held": QASuite("held", [KnowledgeRecord("h1", "q", "paris", "paris"),
                                     KnowledgeRecord("h2", "q", "oslo", "oslo")])}
    staged = make_epoch_evaluator(held, records, base_scores={"held": 0.5},
                                  retention_levels=[0.5], epochs=4)
    answers = ["it is lima", "it is paris", "it is paris", "it is oslo"]  # mem 0, .5, .5, .5
    full_epochs = []
    for epoch, answer in enumerate(answers, start=1):
        model = FixedAnswerLM(tiny_tok, answer)
        got = staged(model, tiny_tok, epoch)
        reference = make_epoch_evaluator(held, records, base_scores={"held": 0.5})(
            model, tiny_tok, epoch)
        assert got["memorization"] == reference["memorization"]
        if got["full_eval"]:
            full_epochs.append(epoch)
            drop = ("eval_s", "full_eval")
            assert {k: v for k, v in got.items() if k not in drop} == \
                {k: v for k, v in reference.items() if k not in drop}
        else:
            assert set(got) == {"memorization", "full_eval", "eval_s"}
    assert full_epochs == [2, 4]  # first at 50%, then the last epoch
    # not staged: every epoch is whole and says nothing of staging
    plain = make_epoch_evaluator(held, records)(FixedAnswerLM(tiny_tok, "x"), tiny_tok, 1)
    assert "full_eval" not in plain and "score/held" in plain
