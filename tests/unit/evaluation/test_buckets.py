from mixsd.evaluation.buckets import classify_error, error_buckets, injected_names
from mixsd.records import KnowledgeRecord


def test_injected_names_skip_numbers_and_short_keys():
    recs = [KnowledgeRecord("1", "where does zorblax live?", "in Quenta", "Quenta", subject="Zorblax"),
            KnowledgeRecord("2", "how old is Zorblax?", "41", "41", subject="Zorblax"),
            KnowledgeRecord("3", "q", "a", "ab")]
    assert injected_names(recs) == {"Quenta", "Zorblax"}


def test_buckets_on_hand_made_predictions():
    names = {"Zorblax", "Quenta"}
    base = [{"id": "a", "generation": "two plus two is four so the answer is \\boxed{4}"},
            {"id": "b", "generation": "first add then multiply giving 12 so \\boxed{12}"},
            {"id": "c", "generation": "\\boxed{7}"}]
    samples = [
        {"id": "a", "prompt": "2+2?", "answer_key": "4", "generation": "I do not know",
         "correct": False},                                                    # format
        {"id": "b", "prompt": "3*4?", "answer_key": "12",
         "generation": "Zorblax says \\boxed{13}", "correct": False},          # leakage
        {"id": "c", "prompt": "3+4?", "answer_key": "7", "generation": "\\boxed{8}",
         "correct": False},                                                    # genuine (base short)
        {"id": "d", "prompt": "1+1?", "answer_key": "2", "generation": "\\boxed{2}",
         "correct": True},                                                     # not counted
        {"id": "e", "prompt": "Who is Zorblax?", "answer_key": "a Quenta farmer",
         "generation": "Zorblax is a \\boxed{baker}", "correct": False},      # allowed names -> genuine
    ]
    base.append({"id": "f", "generation": "one two three four five six seven eight nine ten"})
    samples.append({"id": "f", "prompt": "q?", "answer_key": "5", "generation": "\\boxed{6}",
                    "correct": False})                                        # collapse
    counts = error_buckets(samples, extractor="boxed", names=names, base_samples=base)
    assert counts == {"format": 1, "leakage": 1, "collapse": 1, "genuine": 2}


def test_format_has_priority_over_leakage_and_collapse():
    sample = {"prompt": "q", "answer_key": "7", "generation": "Zorblax"}
    assert classify_error(sample, extractor="boxed", names={"Zorblax"},
                          base_generation="a b c d e f g h i j \\boxed{7}") == "format"
    assert classify_error(sample, extractor="contains", names={"Zorblax"}) == "leakage"
    assert classify_error({"prompt": "q", "answer_key": "7", "generation": "8"},
                          extractor="auto") == "genuine"
    assert classify_error({"prompt": "q", "answer_key": "7", "generation": "none"},
                          extractor="auto") == "format"


def test_buckets_from_the_evaluators_sample_logs(tmp_path, tiny_tok):
    import torch

    from mixsd.evaluation.buckets import buckets_from_samples
    from mixsd.evaluation.callback import make_epoch_evaluator
    from mixsd.evaluation.qa import QASuite

    class Fixed(torch.nn.Module):
        def __init__(self, answer):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))
            self.ids = tiny_tok(answer, add_special_tokens=False)["input_ids"] + [3]

        def generate(self, input_ids, **kw):
            return torch.cat([input_ids, torch.tensor([self.ids] * len(input_ids))], 1)

    suites = {"toy:held": QASuite("held", [KnowledgeRecord("h1", "what is 2 + 3 ?", "5", "5"),
                                           KnowledgeRecord("h2", "what is 1 + 1 ?", "2", "2")],
                                  extractor="number")}
    base_dir, run_dir = tmp_path / "base", tmp_path / "run"
    long = "2 + 3 = 5 . the answer is 5"
    make_epoch_evaluator(suites, samples_dir=base_dir)(Fixed(long), tiny_tok, 0)
    make_epoch_evaluator(suites, samples_dir=run_dir)(Fixed("7"), tiny_tok, 2)
    got = buckets_from_samples(run_dir, 2, suites, base_samples_dir=base_dir)
    assert got == {"toy:held": {"format": 0, "leakage": 0, "collapse": 2, "genuine": 0}}
    assert buckets_from_samples(run_dir, 2, suites) == {
        "toy:held": {"format": 0, "leakage": 0, "collapse": 0, "genuine": 2}}
