"""Artifact I/O: atomic writes, locked JSON updates, JSONL streaming and ``run.json``.

Every artifact is written through :func:`atomic_output`: to a temporary name beside it, then
renamed over it, so a reader sees the previous complete artifact or the new complete one,
never a torn one (docs/architecture.md, "Writes are atomic"). A failed write (a full disk) leaves the
previous artifact as it was and raises :class:`~mixsd.errors.ArtifactWriteError` naming it.
JSON is written strict (RFC 8259, :func:`to_json`): a non-finite number becomes ``null``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mixsd.errors import ArtifactWriteError


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; rename it over ``path`` on success.

    ``directory=True`` yields an empty temporary folder (an existing ``path`` folder is
    replaced). On any error the temporary is removed and ``path`` keeps its previous
    content; an ``OSError`` (disk full, permission) becomes :class:`ArtifactWriteError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = Path(name)
    except OSError as exc:
        raise ArtifactWriteError(path, exc) from exc
    try:
        yield tmp
        if directory:
            tmp.chmod(0o755)  # mkdtemp makes it private; artifacts are shared like any file
            if path.exists():
                shutil.rmtree(path)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArtifactWriteError(path, exc) from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def file_lock(path: str | Path) -> Any:
    """The inter-process lock of ``path`` (a ``filelock.FileLock`` on ``<path>.lock``); a
    folder that cannot be written is :class:`ArtifactWriteError` naming ``path``."""
    from filelock import FileLock

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactWriteError(path, exc) from exc
    return FileLock(str(path) + ".lock")


def read_json_or_empty(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def locked_update_json(path: str | Path, update: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Read-modify-write the JSON object in ``path`` under its file lock, atomically.

    ``update(data)`` changes ``data`` in place; concurrent processes updating other keys
    never lose each other's entries, and readers never see a torn file. Returns the data.
    """
    lock = file_lock(path)
    try:
        lock.acquire()
    except OSError as exc:  # the lock file cannot be made: a read-only folder, a full disk
        raise ArtifactWriteError(path, exc) from exc
    try:
        data = read_json_or_empty(path)
        update(data)
        atomic_write_json(path, data)
    finally:
        lock.release()
    return data


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any, **kwargs: Any) -> str:
    """``obj`` as strict JSON (what every artifact holds): NaN and infinities, which
    ``json.dumps`` would write as the non-standard ``NaN``/``Infinity``, become ``null``."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def dumps_line(obj: Any) -> str:
    """One JSONL line (no trailing newline), UTF-8 kept readable, strict JSON."""
    return to_json(obj, ensure_ascii=False)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented strict JSON (:func:`to_json`), atomically."""
    return atomic_write_text(path, to_json(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    return atomic_write_text(path, "".join(dumps_line(r) + "\n" for r in rows))


def mixsd_home() -> Path:
    """``$MIXSD_HOME``, else ``~/.cache/mixsd``: where the toy model and caches live."""
    return Path(os.environ.get("MIXSD_HOME") or Path.home() / ".cache" / "mixsd")



def folder_bytes(folder: str | Path) -> int:
    """Bytes on disk under ``folder`` (what a run leaves behind)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())

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
    for pkg in ("mixsd", "torch", "transformers", "tokenizers", "peft", "accelerate"):
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
