"""Reading benchmark files for the adapters: a local file, or a ``datasets`` id.

Local files are the default (no network is needed or used). A ``source`` that is not an
existing path but looks like a Hugging Face dataset id (``owner/name``) is loaded with
:func:`datasets.load_dataset` when a network (or a local cache) is available.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError, RecordError
from mixsd.io import file_sha256
from mixsd.records import read_json_objects

_DATASET_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
Row = tuple[dict[str, Any], dict[str, Any]]  # (row, error context for RecordError)


def is_dataset_id(source: str) -> bool:
    """True for ``owner/name`` strings that are not an existing local path."""
    return not Path(source).exists() and bool(_DATASET_ID.match(source)) and \
        Path(source).suffix.lower() not in (".csv", ".json", ".jsonl")


def source_info(source: str) -> dict[str, Any]:
    """Where the data came from, for the manifest: path and sha256, or the dataset id."""
    if is_dataset_id(source):
        return {"dataset_id": source}
    path = Path(source)
    try:
        return {"path": str(path), "sha256": file_sha256(path)}
    except FileNotFoundError:
        raise RecordError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise RecordError("is a directory, expected a file", path=str(path)) from None


def load_hub_rows(dataset_id: str, split: str) -> Iterator[Row]:
    """Rows of a Hugging Face dataset (needs a network or a cached copy)."""
    try:
        import datasets

        data = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # any hub or network failure is the user's to fix
        raise MixsdError(f"could not load dataset {dataset_id!r} (split {split!r}): {exc}; "
                         "pass a local file instead") from None
    for i, row in enumerate(data):
        yield dict(row), {"path": f"{dataset_id}[{split}] row {i + 1}"}


def _open(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM (Excel exports)
    except FileNotFoundError:
        raise RecordError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise RecordError("is a directory, expected a file", path=str(path)) from None
    except UnicodeDecodeError:
        raise RecordError("not valid UTF-8 text", path=str(path)) from None


def read_csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[Row]:
    """Rows of a CSV file with a header; errors name the file, line and column."""
    text = _open(path)
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise RecordError(f"missing column(s) {', '.join(missing)}; found "
                          f"{', '.join(header) or 'no header'}", path=str(path), line=1)
    try:
        for row in reader:
            yield row, {"path": str(path), "line": reader.line_num}
    except csv.Error as exc:
        raise RecordError(f"invalid CSV: {exc}", path=str(path), line=reader.line_num) from None


def read_rows(source: str, split: str, csv_columns: tuple[str, ...] = ()) -> Iterator[Row]:
    """Rows of ``source``: a CSV/JSON/JSONL file, or a ``datasets`` id (``split`` is used)."""
    if is_dataset_id(source):
        return load_hub_rows(source, split)
    path = Path(source)
    if path.suffix.lower() == ".csv":
        return read_csv_rows(path, csv_columns)
    return read_json_objects(path)


def text_field(row: dict[str, Any], key: str, ctx: dict[str, Any],
               label: str | None = None) -> str:
    """A required non-empty string field (numbers are accepted and written as text).

    ``label`` names the field in errors when it is nested (``requested_rewrite[0].subject``).
    """
    value, name = row.get(key), label or key
    if value is None:
        raise RecordError("missing required field", field=name, **ctx)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(f"must be a string, got {type(value).__name__}", field=name, **ctx)
    if not value.strip():
        raise RecordError("must not be empty", field=name, **ctx)
    return value.strip()
