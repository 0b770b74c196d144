import shutil
from pathlib import Path

from mixsd.cli import main

FIXTURE = Path(__file__).parents[1] / "fixtures" / "report_results.json"


def test_report_cli_writes_markdown_html_and_plots(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURE, run / "results.json")
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "rep" / "report.html") in printed
    for name in ("report.md", "report.html", "frontier.png", "epochs.png", "nll.png",
                 "fisher.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 500, name


def test_report_cli_missing_results_is_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and "Traceback" not in err
