import pytest

from mixsd.cli import commands, main


def test_top_level_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in commands())


def test_no_verb_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "verbs:" in capsys.readouterr().err


def test_unknown_verb_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    assert "unknown verb 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", list(commands()))
def test_every_verb_has_help_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Example" in out and f"mixsd {verb}" in out


@pytest.mark.parametrize("analysis", ["nll", "fisher", "rules"])
def test_every_analysis_has_help_with_an_example(analysis, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", analysis, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Example:" in out and f"mixsd analyze {analysis}" in out.split("Example:")[1]
