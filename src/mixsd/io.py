"""Artifact I/O: atomic writes, JSONL streaming and the ``run.json`` provenance file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dumps_line(obj: Any) -> str:
    """One JSONL line (no trailing newline), UTF-8 kept readable."""
    return json.dumps(obj, ensure_ascii=False)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    return atomic_write_text(path, "".join(dumps_line(r) + "\n" for r in rows))


def mixsd_home() -> Path:
    """``$MIXSD_HOME``, else ``~/.cache/mixsd``: where the toy model and caches live."""
    return Path(os.environ.get("MIXSD_HOME") or Path.home() / ".cache" / "mixsd")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (recorded in run.json and manifests)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the mixsd checkout, when it is one (None for an installed wheel)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a result."""
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for pkg in ("mixsd", "torch", "transformers", "tokenizers", "peft", "accelerate", "trl"):
        try:
            found[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return found


def write_run_info(out_dir: str | Path, config: Any = None, **fields: Any) -> Path:
    """Write ``config.yaml`` (the resolved config) and ``run.json`` (provenance) atomically."""
    out_dir = Path(out_dir)
    if config is not None:
        atomic_write_text(out_dir / "config.yaml", config.to_yaml())
    info = {"versions": versions(), "git_commit": git_commit(), "argv": sys.argv,
            "platform": platform.platform(), **fields}
    return atomic_write_json(out_dir / "run.json", info)
