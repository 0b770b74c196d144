"""What a published injection's folder renders: report.md, the model card, the README
section with the independent evaluation beside the card (docs/inject/toy as the fixture)."""

import shutil
from pathlib import Path

from mixsd.report import write_report
from mixsd.report.inject import inject_command
from mixsd.report.readme import update_readme

PUBLISHED = Path(__file__).parents[3] / "docs" / "inject" / "toy"


def test_an_injection_folder_renders_its_report_card_and_readme_section(tmp_path):
    folder = tmp_path / "docs" / "inject" / "toy"
    folder.mkdir(parents=True)
    shutil.copy(PUBLISHED / "inject.json", folder / "inject.json")
    (folder / "eval").mkdir()
    shutil.copy(PUBLISHED / "eval" / "scores.json", folder / "eval" / "scores.json")
    report = write_report([folder], folder)
    assert report == folder / "report.md" and (folder / "epochs.png").stat().st_size > 1000
    text = report.read_text()
    assert "### Try 1: lr 0.001" in text and "### Facts not learned" in text
    card = (folder / "model-card.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers") and "sha256" in card
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- inject:start -->\nSTALE\n<!-- inject:end -->\ntail\n")
    update_readme(readme, folder, folder, "mixsd report X", section="inject")
    section = readme.read_text()
    assert "STALE" not in section and section.endswith("<!-- inject:end -->\ntail\n")
    assert "mixsd inject --model toy --data toy --retain 0.9 --n-facts 100" in section
    assert "](docs/inject/toy/epochs.png)" in section
    confirmed = section.split("Confirmed by an independent `mixsd eval`")[1].split("###")[0]
    rows = [line.split("|")[2:4] for line in confirmed.splitlines() if line.startswith("| ")]
    assert len(rows) >= 3 and all(card_value == evaluated for card_value, evaluated in rows[1:])


def test_the_command_shows_what_differs_from_the_defaults():
    config = {"model": "m", "data": "d", "retain": 0.95, "lora": True, "out": "o",
              "probe": ["general:120", "instruct"], "default_probes": False, "epochs": 10}
    assert inject_command(config) == ("mixsd inject --model m --data d --retain 0.95 --probe "
                                      "general:120,instruct --no-default-probes --lora")


def test_the_command_shows_a_stage_key_set_by_its_dotted_name():
    """A stage key with no flat name (recorded as ``train.weight_decay`` only where it differs
    from the default) is part of the command."""
    config = {"model": "m", "data": "d", "retain": 0.9, "out": "o", "train.weight_decay": 0.1}
    assert inject_command(config) == ("mixsd inject --model m --data d --retain 0.9 "
                                      "--train.weight-decay 0.1")
