import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from mixsd.errors import RecordError
from mixsd.report import write_report

FIXTURE = Path(__file__).parents[2] / "fixtures" / "report_results.json"
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_from_fixture_has_tables_and_non_empty_pngs(tmp_path):
    html_path = write_report([FIXTURE], tmp_path / "out")
    out = tmp_path / "out"
    assert html_path == out / "report.html"
    for name in ("frontier.png", "epochs.png", "nll.png", "fisher.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    md = (out / "report.md").read_text()
    assert "![Memorisation–retention frontier](frontier.png)" in md
    # selected-epoch row of the fixture's SFT run: memorisation 100%, retention mean 33.3%
    assert re.search(r"\| sft lr=0\.0001 seed=0 \| sft \|.*\| 100\.0 \|.*\| 33\.3 \|", md)
    assert "Retention at equal memorisation" in md and "75.0%" in md
    assert "| mixsd:0 lr=0.0001 seed=0 | 1 | 1 | 0 | 9 |" in md   # error buckets


def test_html_is_self_contained(tmp_path):
    html = write_report([FIXTURE], tmp_path).read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == 4
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    assert "src='frontier.png'" not in html and "<table>" in html
    assert "http" not in html  # nothing fetched from elsewhere


def test_several_results_are_combined_with_their_source(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(FIXTURE, tmp_path / name / "results.json")
    write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| a/sft lr=0.0001 seed=0 |" in md and "| b/sft lr=0.0001 seed=0 |" in md


def test_minimal_results_without_analyses(tmp_path):
    obj = json.loads(FIXTURE.read_text())
    for run in obj["runs"]:
        run.update(fisher=None, target_nll=None)
    obj["base"].pop("target_nll")
    (tmp_path / "results.json").write_text(json.dumps(obj))
    write_report([tmp_path], tmp_path / "out")
    assert (tmp_path / "out" / "frontier.png").exists()
    assert not (tmp_path / "out" / "fisher.png").exists()


def test_bad_results_name_the_field(tmp_path):
    obj = json.loads(FIXTURE.read_text())
    del obj["runs"][1]["method"]
    (tmp_path / "results.json").write_text(json.dumps(obj))
    with pytest.raises(RecordError, match=r"runs\[1\]\.method"):
        write_report([tmp_path], tmp_path / "out")


def test_a_run_lambda_is_read_under_either_key(tmp_path):
    from mixsd.evaluation.results import read_results

    obj = json.loads(FIXTURE.read_text())
    for run in obj["runs"]:
        run["mix_lambda"] = run.pop("lambda")
        run.pop("name", None)  # the names are rebuilt from method and lambda
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(obj))
    plain = json.loads(FIXTURE.read_text())
    for run in plain["runs"]:
        run.pop("name", None)
    named = tmp_path / "plain.json"
    named.write_text(json.dumps(plain))
    assert read_results(renamed)["runs"][1]["mix_lambda"] == 0.0
    write_report([named], tmp_path / "a")
    write_report([renamed], tmp_path / "b")
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| mixsd:0.5 lr=" in md and md == (tmp_path / "b" / "report.md").read_text()
    for run in obj["runs"]:
        del run["mix_lambda"]
    renamed.write_text(json.dumps(obj))
    with pytest.raises(RecordError, match=r"runs\[0\]\.lambda.*missing"):
        read_results(renamed)
