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


def test_named_section_with_targets_known_sets_and_cost(tmp_path, capsys):
    import json

    data = json.loads(FIXTURE.read_text())
    data["base"]["suite_info"] = {"general": {"items": 120, "known": 70,
                                              "base_accuracy": 0.5833}}
    data["targets"] = {"mixsd-0.5": {"records": 32, "verified": 9, "unverified": 23,
                                     "mean_attempts": 6.5, "mean_naive_token_fraction": 0.48,
                                     "mean_num_tokens": 30.1, "wall_s": 120.0}}
    data["wall_s"], data["disk_bytes"] = 3000.0, 50 * 2**20
    results = tmp_path / "real" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(data))
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\ndemo stays\n{END}\n<!-- real:start -->\nold\n<!-- real:end -->\n")
    assert main(["report", str(results.parent), "--out", str(tmp_path / "docs"),
                 "--readme", str(readme), "--section", "real"]) == 0
    text = readme.read_text()
    assert "demo stays" in text and "old" not in text.split("<!-- real:start -->")[1]
    real = text.split("<!-- real:start -->")[1].split("<!-- real:end -->")[0]
    assert "### Known sets of the base model" in real and "| general | 120 | 70 | 58.3 |" in real
    assert "### Targets" in real and "| mixsd-0.5 | 32 | 9 | 23 | 6.50 | 0.480 |" in real
    # two seeds of mixsd:0.5 in the fixture: mean ± sd per method, per-run tables in the report
    assert "### Methods over seeds (mean ± standard deviation)" in real
    assert "| mixsd:0.5 lr=0.0001 | 2 |" in real
    assert "### Training length, first peak and best epoch" not in real
    assert "wall time 50.0 min, 50 MiB on disk" in real and "targets and runs" in real
    assert "--section real" in real
    with pytest.raises(MixsdError, match="<!-- other:start -->"):
        update_readme(readme, results, tmp_path, section="other")
