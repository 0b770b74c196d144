import shutil
from pathlib import Path

import pytest

from mixsd.cli import main
from mixsd.errors import MixsdError
from mixsd.report.readme import END, START, update_readme

FIXTURE = Path(__file__).parents[2] / "fixtures" / "report_results.json"


def test_readme_section_is_regenerated_between_markers(tmp_path, capsys):
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    shutil.copy(FIXTURE, results)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{START}\nold numbers\n{END}\n\nafter\n")
    assert main(["report", str(results.parent), "--out", str(tmp_path / "docs"),
                 "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n") and text.endswith("\n\nafter\n")
    assert "old numbers" not in text
    section = text[text.index(START):text.index(END)]
    assert "](docs/frontier.png)" in section and "| " in section
    assert f"mixsd report {results.parent}" in section
    first = text
    assert main(["report", str(results.parent), "--out", str(tmp_path / "docs"),
                 "--readme", str(readme)]) == 0
    assert readme.read_text().count(START) == 1 and len(readme.read_text()) == len(first)


def test_readme_without_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    with pytest.raises(MixsdError, match="markers"):
        update_readme(readme, FIXTURE, tmp_path)
