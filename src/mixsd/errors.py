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
    """Writing an artifact failed (a full disk, a file-size limit, a read-only folder); the
    previous complete artifact at ``path`` is left as it was. The message names the path, the
    reason and what to do (:func:`write_failure_advice`)."""

    def __init__(self, path: object, cause: BaseException | None = None,
                 advice: str | None = None) -> None:
        reason = getattr(cause, "strerror", None) or (str(cause) if cause else "write failed")
        todo = advice or write_failure_advice(cause)
        super().__init__(f"could not write {path}: {reason}; {todo}; the previous complete "
                         "version (if any) is unchanged")
        self.path = str(path)
        self.cause = cause
        self.advice = advice

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.cause, self.advice))


# errno values of a write that the user fixes by freeing space or choosing another folder
_NO_SPACE = {"ENOSPC", "EDQUOT", "EFBIG"}
_NOT_WRITABLE = {"EACCES", "EPERM", "EROFS"}


def write_failure_advice(cause: BaseException | None) -> str:
    """What to do after a failed write, by its errno: free space (or raise the file-size
    limit), or make the folder writable / choose another one (``--out``, ``$MIXSD_HOME``)."""
    import errno

    name = errno.errorcode.get(getattr(cause, "errno", None) or -1, "")
    if name in _NO_SPACE:
        return "free disk space (or raise the file-size limit) and re-run the same command"
    if name in _NOT_WRITABLE:
        return ("make that folder writable or choose another one (--out; $MIXSD_HOME for the "
                "model and score caches)")
    if name in ("ENOTDIR", "EEXIST"):
        return "a file stands where a folder is needed: choose another path"
    return "check the disk and the folder's permissions, then re-run the same command"


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` of a failed write the user can fix (no space, a
    file-size limit, no permission, a read-only file system, a file where a folder goes)."""
    import errno

    name = errno.errorcode.get(getattr(exc, "errno", None) or -1, "")
    return isinstance(exc, OSError) and name in (
        _NO_SPACE | _NOT_WRITABLE | {"ENOTDIR", "EEXIST"})


class StageBusyError(MixsdError):
    """Another process is writing the stage folder (it holds the folder's lock)."""

    def __init__(self, path: object, holder: str) -> None:
        super().__init__(f"{path} is being written by another process ({holder}); wait for "
                         "it to finish (then re-run to resume or reuse it) or choose another "
                         "--out")
        self.path = str(path)
        self.holder = holder

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.holder))


class PeerLostError(MixsdError):
    """A process of a multi-process run stopped answering; the run ends instead of waiting."""

    def __init__(self, rank: int, waited_s: float, what: str = "") -> None:
        super().__init__(f"process rank {rank} stopped (no heartbeat for {waited_s:.0f} s"
                         f"{'; ' + what if what else ''}); finished shards are kept: re-run the "
                         "same command to resume")
        self.rank = rank
