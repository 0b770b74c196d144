"""The README's Python example runs as written (on the shipped toy model)."""

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    exec(compile(block, "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all("->" in line for line in lines)


def test_readme_names_only_existing_verbs():
    from mixsd.cli import commands

    shell = "".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S))
    verbs = set(re.findall(r"^mixsd (\w+)", shell, flags=re.M))
    assert verbs and verbs <= set(commands())
