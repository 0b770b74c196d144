import pytest

from mixsd.answers import (
    answers_match,
    check_extractor,
    extract_answer,
    extract_boxed,
    extract_last_number,
    is_correct,
    normalize_answer,
)
from mixsd.errors import ConfigError


def test_boxed_takes_the_last_and_matches_braces():
    assert extract_boxed(r"first \boxed{1} then \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    assert extract_boxed("no box") is None
    assert extract_boxed(r"\boxed{unclosed") is None


def test_last_number():
    assert extract_last_number("3 apples and 1,000.5 pears") == "1,000.5"
    assert extract_last_number("minus -7.") == "-7"
    assert extract_last_number("none") is None


@pytest.mark.parametrize("a, b", [("1,000", "1000"), ("1000.0", "1000"), ("The Paris.", "paris"),
                                  ("  New   York ", "new york"), (r"\text{Oslo}", "Oslo"),
                                  ("$5", "5"), ("3.50", "3.5")])
def test_normalised_matching(a, b):
    assert answers_match(a, b)


@pytest.mark.parametrize("a, b", [("10", "100"), ("Paris", "Parisian"), (None, "x"), ("1.5", "15")])
def test_normalised_mismatch(a, b):
    assert not answers_match(a, b)


def test_normalize_keeps_decimals_and_drops_full_stops():
    assert normalize_answer("It is 3.5.") == "it is 3.5"


def test_auto_extractor_prefers_boxed_then_number_then_contains():
    assert extract_answer(r"it is 5 \boxed{7}", "auto", "7") == "7"
    assert is_correct("so 3 + 4 = 7", "7")
    assert not is_correct("so 7 + 4 = 11", "7")  # the LAST number is the answer
    assert is_correct("Alice Vorn was born in Tulsa .", "Tulsa")
    assert not is_correct("Alice Vorn was born in Tulsaville .", "Tulsa")
    assert is_correct("she lives in new york now", "New York")


def test_regex_extractor():
    assert extract_answer("Answer: Lima (probably)", r"regex:Answer: (\w+)") == "Lima"
    assert is_correct("Answer: Lima", "lima", r"regex:Answer: (\w+)")
    with pytest.raises(ConfigError, match="regex"):
        check_extractor("regex:(")
    with pytest.raises(ConfigError, match="extractor must be one of"):
        check_extractor("nope")


EQUIVALENT = [("\\boxed{\\frac{1}{2}}", "0.5"), ("so \\boxed{0.5}", "\\frac{1}{2}"),
              ("\\boxed{1/2}", "\\frac{1}{2}"), ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\sqrt{2}/2"),
              ("\\boxed{(x+1)^2}", "x^2+2x+1"), ("\\boxed{\\{2, 1\\}}", "\\{1,2\\}"),
              ("the answer is 1,000", "1000"), ("\\boxed{50\\%}", "0.5")]


@pytest.mark.parametrize("text,key", EQUIVALENT)
def test_math_answers_are_compared_as_mathematics(text, key):
    pytest.importorskip("math_verify")
    from mixsd.answers import is_correct, math_scorer

    assert math_scorer().startswith("math-verify")
    assert is_correct(text, key, "math")
    assert not is_correct("\\boxed{0.75}", key, "math")
    assert not is_correct("no answer here", key, "math")


def test_math_falls_back_to_the_string_rule_without_math_verify(monkeypatch):
    import mixsd.answers as answers

    monkeypatch.setattr(answers, "_math_verify", lambda: None)
    assert answers.math_scorer() == "string"
    assert answers.is_correct("\\boxed{1,000}", "1000", "math")  # the string rule still holds
    assert not answers.is_correct("\\boxed{\\frac{1}{2}}", "0.5", "math")
    assert answers.extract_answer("x = 4, then 7", "math") == "7"


def test_math_suites_use_the_math_scorer(write_jsonl):
    from mixsd.evaluation.suites import get_suites

    path = write_jsonl([{"id": "a", "prompt": "half ?", "answer": "\\boxed{0.5}",
                         "answer_key": "\\frac{1}{2}"}])
    suite = get_suites([f"math:{path}"])[f"math:{path}"]
    assert suite.extractor == "math"
