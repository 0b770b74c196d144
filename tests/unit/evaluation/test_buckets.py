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
