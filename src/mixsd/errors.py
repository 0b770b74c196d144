"""Exceptions for user mistakes. The CLI prints these as one line, never a traceback."""

from __future__ import annotations


class MixsdError(Exception):
    """A problem the user can fix (bad input file, bad config value, missing model)."""


class ConfigError(MixsdError, ValueError):
    """An invalid configuration value; the message names the key and its flag."""


class RecordError(MixsdError, ValueError):
    """Invalid input data; the message names the file, line and field at fault."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path) + (f":{line}" if line is not None else ""))
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path, self.line, self.field = path, line, field
