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


class ArtifactWriteError(MixsdError):
    """Writing an artifact failed (a full disk, a permission); the previous complete artifact
    at ``path`` is left as it was."""

    def __init__(self, path: object, cause: BaseException | None = None) -> None:
        reason = getattr(cause, "strerror", None) or (str(cause) if cause else "write failed")
        super().__init__(f"could not write {path}: {reason}; the previous complete version "
                         "(if any) is unchanged")
        self.path = str(path)
        self.cause = cause

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.cause))


class PeerLostError(MixsdError):
    """A process of a multi-process run stopped answering; the run ends instead of waiting."""

    def __init__(self, rank: int, waited_s: float, what: str = "") -> None:
        super().__init__(f"process rank {rank} stopped (no heartbeat for {waited_s:.0f} s"
                         f"{'; ' + what if what else ''}); finished shards are kept: re-run the "
                         "same command to resume")
        self.rank = rank
