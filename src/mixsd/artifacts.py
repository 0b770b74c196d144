"""The one artifact layer: stage folders that resume, refuse or overwrite by a fingerprint.

Every long stage (``targets``, ``train``, ``compare``) writes a folder holding its resolved
``config.yaml``, its ``run.json`` (status ``running`` then ``complete``, the fingerprint
and the fingerprinted fields) and its outputs, each written atomically
(:mod:`mixsd.io`). Before it writes, a stage opens its folder with :func:`open_stage`,
passing the fields that decide its outputs and naming the ones that may change between two
invocations (a device, a progress bar, runs added to a grid); the layer then decides, the
same way for every stage:

* no ``run.json`` (or a stage with nothing kept yet): a **new** run;
* the same fingerprint: **resume** (the stage reuses what it finished);
* another fingerprint: **refuse** with one :class:`~mixsd.errors.MixsdError` line naming the
  changed fields and what to do (the same command resumes, ``--overwrite`` where the stage
  has it, or another ``--out``);
* ``overwrite``: a new run, built into the sibling folder ``.NAME.overwrite`` and renamed
  over ``NAME`` by :meth:`StageDir.commit` once it is complete, so an interruption leaves the
  old artifact whole at ``NAME`` (the same ``--overwrite`` command resumes the build). A
  stage whose artifacts record their own paths (a comparison: its runs' fingerprints name
  their folders) opens with ``in_place=True`` instead: the old folder is moved aside to
  ``.NAME.replaced`` (whole) and deleted by :meth:`StageDir.commit`.

One writer per folder: :func:`open_stage` takes the folder's exclusive lock
(:class:`StageLock`, held until :meth:`StageDir.close`, released by the kernel however the
process ends); a second writer gets :class:`~mixsd.errors.StageBusyError` naming the
process that holds it. Readers of a stage's output check its ``run.json`` status
(:func:`require_complete`).

A folder written before this layer (a ``run.json`` without a fingerprint) is compared by
the fields its ``config.yaml`` records (or the stage's ``legacy`` reader), so old folders
keep working. :class:`KeyedCache` is the one keyed, locked cache (base scores), keyed by
the same :func:`fingerprint`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import ArtifactWriteError, MixsdError, StageBusyError
from mixsd.io import locked_update_json, read_json_or_empty, write_run_info

try:  # POSIX; elsewhere a stage folder is not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

RUN_INFO = "run.json"
CONFIG_FILE = "config.yaml"
RUNNING, COMPLETE = "running", "complete"


def canonical_json(obj: Any) -> str:
    """``obj`` as canonical JSON (what is hashed): sorted keys, ``json.dumps``' default
    separators and ASCII escapes, so hashes recorded before this module (the toy model's
    ``config_hash``) are this fingerprint's prefix."""
    return json.dumps(obj, sort_keys=True, default=str)


def fingerprint(fields: Any) -> str:
    """Hex sha256 of the canonical JSON of ``fields`` (the fields that decide an output)."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def decisive(fields: Mapping[str, Any], mutable: Iterable[str] = ()) -> dict[str, Any]:
    """``fields`` without the ``mutable`` ones (those that may change between invocations)."""
    skip = set(mutable)
    return {k: v for k, v in fields.items() if k not in skip}


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], *,
                   only_common: bool = False,
                   defaults: Mapping[str, Any] | None = None) -> list[str]:
    """The sorted names whose values differ; with ``only_common`` a name missing on either
    side is not a change (a folder written before the field existed); a name in
    ``defaults`` missing on one side and at that default on the other is not one either
    (a field added later, at its default)."""
    names = set(old) & set(new) if only_common else set(old) | set(new)
    defaults = defaults or {}

    def value(side: Mapping[str, Any], k: str) -> Any:
        return side[k] if k in side else defaults.get(k, _MISSING)

    return sorted(k for k in names if value(old, k) != value(new, k))


_MISSING = object()


def read_config_fields(folder: Path) -> dict[str, Any] | None:
    """The values a folder's ``config.yaml`` records (None without one): how a folder made
    before this layer is compared."""
    import yaml

    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _process_rank() -> int:
    """This process's rank in a multi-process launch (``RANK``; 0 otherwise)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


# Locks held by this process: lock file -> [fd, count, pid] (a stage may open its folder
# twice); a forked child inherits the table but not the locks.
_HELD: dict[str, list[int]] = {}


class StageLock:
    """The exclusive lock of one stage folder: one writer at a time.

    An ``flock`` on ``PARENT/.NAME.lock`` (beside the folder, so it survives the renames of
    an overwrite; inside it, as ``.mixsd.lock``, where the parent is not writable), taken
    without waiting. The file names its holder (pid, host, command, start); the kernel
    releases the lock however the process ends (a kill included), so a lock file left by a
    dead process is stale and the next writer takes it. :meth:`release` removes the file.
    The processes of one multi-process launch each lock their own file (``.NAME.rankR.lock``
    for rank R > 0); within one process the lock is re-entrant.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(os.path.abspath(folder))
        self.path: Path | None = None

    def _candidates(self) -> list[Path]:
        rank = _process_rank()
        name = f".{self.folder.name}{'' if rank == 0 else f'.rank{rank}'}.lock"
        inside = self.folder / (".mixsd.lock" if rank == 0 else f".mixsd.rank{rank}.lock")
        return [self.folder.parent / name, inside]

    def acquire(self) -> StageLock:
        """Take the lock; :class:`StageBusyError` when another process holds it,
        :class:`ArtifactWriteError` when the folder cannot be written at all."""
        if fcntl is None:  # pragma: no cover
            return self
        beside, inside = self._candidates()
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            self._lock(beside)
        except OSError as exc:
            # The parent is read-only: the folder itself may not be (lock inside it then).
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS) \
                    or not self.folder.is_dir():
                raise ArtifactWriteError(self.folder, exc) from exc
            try:
                self._lock(inside)
            except OSError as inner:
                raise ArtifactWriteError(self.folder, inner) from inner
        return self

    def _lock(self, path: Path) -> None:
        key = str(path)
        if key in _HELD and _HELD[key][2] == os.getpid():
            _HELD[key][1] += 1
            self.path = path
            return
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StageBusyError(self.folder, _holder(path)) from None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us may have removed the file between our open and our lock:
            # then we locked a file nobody else will see; take the one at the path again.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": " ".join(["mixsd", *sys.argv[1:]]) if sys.argv else "",
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode("utf-8"))
        except OSError:
            os.close(fd)
            raise
        _HELD[key] = [fd, 1, os.getpid()]
        self.path = path

    def release(self) -> None:
        """Give the lock back (the file is removed while still held, then closed)."""
        if self.path is None:
            return
        key, self.path = str(self.path), None
        held = _HELD.get(key)
        if held is None or held[2] != os.getpid():
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        try:
            os.unlink(key)
        except OSError:
            pass
        os.close(held[0])

    def __enter__(self) -> StageLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder(path: Path) -> str:
    """Who holds the lock file ``path``, in words (what it recorded)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has not said which yet"
    where = f" on {info['host']}" if info.get("host") else ""
    command = f", `{info['command']}`" if info.get("command") else ""
    since = f", since {info['since']}" if info.get("since") else ""
    return f"pid {info['pid']}{where}{command}{since}"


def _sibling(path: Path, what: str) -> Path:
    return path.with_name(f".{path.name}.{what}")


def build_dir(path: str | Path) -> Path:
    """Where an ``--overwrite`` of the folder ``path`` is built: ``.NAME.overwrite``."""
    return _sibling(Path(path), "overwrite")


def replaced_dir(path: str | Path) -> Path:
    """Where the folder ``path`` is kept while an overwrite replaces it: ``.NAME.replaced``."""
    return _sibling(Path(path), "replaced")


def _is_complete(folder: Path) -> bool:
    return read_json_or_empty(folder / RUN_INFO).get("status") == COMPLETE


def _settle(path: Path) -> None:
    """Finish or undo a replacement that an interruption cut (under the folder's lock):
    between the two renames of a commit, the complete build goes in (or, incomplete, the
    old folder comes back); once the new folder is complete the old one is deleted."""
    old, new = replaced_dir(path), build_dir(path)
    if not old.exists():
        return
    if not path.exists():
        os.replace(new if _is_complete(new) else old, path)
    if old.exists() and _is_complete(path):
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class StageDir:
    """An opened stage folder: ``state`` is ``"new"`` or ``"resume"``; ``previous`` is the
    ``run.json`` found there (``{}`` for a new run).

    ``path`` is where the stage writes; ``dest`` the folder it becomes: the same folder,
    except for an overwrite, built in ``.NAME.overwrite`` until :meth:`commit`. The stage
    holds the folder's lock until :meth:`close` (``with open_stage(...) as stage:``)."""

    path: Path
    stage: str
    fields: dict[str, Any]
    fingerprint: str
    state: str
    previous: dict[str, Any] = field(default_factory=dict)
    dest: Path | None = None
    lock: StageLock | None = None
    replaced: Path | None = None  # the old folder, moved aside by an in-place overwrite

    def __post_init__(self) -> None:
        if self.dest is None:
            self.dest = self.path

    @property
    def resumed(self) -> bool:
        return self.state == "resume"

    @property
    def complete(self) -> bool:
        """Whether a run of this very fingerprint already finished here."""
        return self.resumed and self.previous.get("status") == COMPLETE

    def write_info(self, config: Any = None, *, status: str, **extra: Any) -> Path:
        """Write ``config.yaml`` (when ``config``) and ``run.json`` atomically: the status,
        the fingerprint and its fields, provenance (:func:`mixsd.io.write_run_info`) and
        ``extra``."""
        return write_run_info(self.path, config, stage=self.stage, status=status,
                              fingerprint=self.fingerprint, fields=self.fields, **extra)

    def commit(self) -> Path:
        """Make a complete overwrite the folder (call after ``write_info(status=COMPLETE)``):
        the build is renamed over the old folder, or the old folder moved aside is deleted.
        Returns :attr:`dest`. Nothing to do for a folder written in place."""
        dest = self.dest
        assert dest is not None
        try:
            if self.path != dest:
                old = replaced_dir(dest)
                if old.exists():
                    shutil.rmtree(old)
                if dest.exists():
                    os.replace(dest, old)
                os.replace(self.path, dest)
                self.path = dest
                shutil.rmtree(old, ignore_errors=True)
            elif self.replaced is not None:
                shutil.rmtree(self.replaced, ignore_errors=True)
                self.replaced = None
        except OSError as exc:
            raise ArtifactWriteError(dest, exc) from exc
        return dest

    def close(self) -> None:
        """Release the folder's lock (idempotent)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> StageDir:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def require_complete(folder: str | Path, what: str, todo: str) -> None:
    """Refuse to read a stage folder whose ``run.json`` says it is not complete (a run that
    is still going or was cut), naming it; a folder without a ``run.json`` passes."""
    info = read_json_or_empty(Path(folder) / RUN_INFO)
    status = info.get("status")
    if status is not None and status != COMPLETE:
        raise MixsdError(f"{folder} is not a complete {what} (status {status}: its run is "
                         f"still going or was cut); {todo}")


def refusal(path: Path, stage: str, changed: list[str], overwrite_flag: str | None) -> MixsdError:
    """The one-line error of a folder made with other values of ``changed``."""
    what = ", ".join(changed) if changed else "unrecorded settings"
    todo = "re-run the same command to resume it"
    todo += f", pass {overwrite_flag} to replace it," if overwrite_flag else ""
    return MixsdError(f"{path} holds a {stage} made with other values of {what}; {todo} "
                      "or choose another --out")


@dataclass(frozen=True)
class Reuse:
    """How :func:`open_stage` compares a folder already there with this invocation.

    ``mutable`` fields may change between invocations (left out of the fingerprint);
    ``defaults`` are the defaults of fields added later
    (:meth:`mixsd.config.StageConfig.later_defaults`): one missing on either side and at its
    default on the other is no change; ``legacy(path)`` reads the fields of a folder whose
    ``run.json`` has no fingerprint (default: its ``config.yaml``); ``has_outputs=False`` says
    the folder keeps nothing worth resuming yet, so a mismatch starts again instead of
    refusing."""

    mutable: Iterable[str] = ()
    defaults: Mapping[str, Any] | None = None
    legacy: Callable[[Path], Mapping[str, Any] | None] | None = None
    has_outputs: bool = True


def open_stage(path: str | Path, stage: str, fields: Mapping[str, Any], *,
               reuse: Reuse = Reuse(), overwrite: bool = False,
               overwrite_flag: str | None = None, in_place: bool = False,
               lock: bool = True) -> StageDir:
    """Open the folder of one stage: new, resume (same fingerprint), refuse, or overwrite;
    under the folder's lock (see the module docstring; ``lock=False`` only reads).

    ``fields`` decide the stage's outputs; ``reuse`` (:class:`Reuse`) says how a folder
    already there is compared with them. ``overwrite`` starts a new run
    whatever is there, built into ``.NAME.overwrite`` (resumed there when an earlier
    ``--overwrite`` of the same fingerprint was cut) and renamed over the old folder by
    :meth:`StageDir.commit`; with ``in_place`` the old folder is moved aside to
    ``.NAME.replaced`` instead and the new run written at ``path`` (``overwrite_flag``, e.g.
    ``"--overwrite"``, is named in a refusal where the stage has one). A ``run.json``
    without a fingerprint (written before this layer) is compared on the fields both know.
    Nothing is written here but the lock (and
    an overwrite's renames): the stage calls :meth:`StageDir.write_info`.
    """
    path = Path(path)
    held = StageLock(path).acquire() if lock else None
    try:
        if _process_rank() == 0 and held is not None:
            _settle(path)
        opened = _open(path, stage, fields, reuse, overwrite=overwrite,
                       overwrite_flag=overwrite_flag, in_place=in_place,
                       writer=held is not None)
    except OSError as exc:
        if held is not None:
            held.release()
        raise ArtifactWriteError(path, exc) from exc
    except BaseException:
        if held is not None:
            held.release()
        raise
    opened.lock = held
    return opened


def _open(path: Path, stage: str, fields: Mapping[str, Any], reuse: Reuse, *,
          overwrite: bool, overwrite_flag: str | None, in_place: bool, writer: bool
          ) -> StageDir:
    kept = decisive(fields, reuse.mutable)
    digest = fingerprint(kept)

    def opened(state: str, previous: dict[str, Any], at: Path = path, **more: Any) -> StageDir:
        return StageDir(at, stage, kept, digest, state, previous, dest=path, **more)

    if overwrite and in_place:
        old = replaced_dir(path)
        previous = read_json_or_empty(path / RUN_INFO)
        if old.exists():  # an earlier --overwrite moved the old folder aside already
            if previous.get("fingerprint") == digest:
                return opened("resume", previous, replaced=old)
            if writer and path.exists():
                shutil.rmtree(path)  # a cut replacement of other values: never complete
        elif writer and path.exists() and any(path.iterdir()):
            os.replace(path, old)
        else:
            old = None
        if writer:
            path.mkdir(parents=True, exist_ok=True)
        return opened("new", {}, replaced=old)
    if overwrite:
        build = build_dir(path)
        previous = read_json_or_empty(build / RUN_INFO)
        if writer:
            build.mkdir(parents=True, exist_ok=True)
        state = "resume" if previous.get("fingerprint") == digest else "new"
        return opened(state, previous if state == "resume" else {}, at=build)
    # An in-place overwrite that was cut left the old folder aside: deleted once complete.
    aside = replaced_dir(path) if in_place and replaced_dir(path).exists() else None
    previous = read_json_or_empty(path / RUN_INFO)
    if not previous and not (path / CONFIG_FILE).is_file():
        return opened("new", {}, replaced=aside)
    if "fingerprint" in previous:
        if previous["fingerprint"] == digest:
            return opened("resume", previous, replaced=aside)
        changed = changed_fields(previous.get("fields") or {}, kept, defaults=reuse.defaults)
        if not changed:
            return opened("resume", previous, replaced=aside)
    else:
        old_fields = (reuse.legacy or read_config_fields)(path)
        if old_fields is None:
            return opened("new", {}, replaced=aside)
        changed = changed_fields(decisive(old_fields, reuse.mutable), kept, only_common=True)
        if not changed:
            return opened("resume", previous, replaced=aside)
    if not reuse.has_outputs:
        return opened("new", {}, replaced=aside)
    error = refusal(path, stage, changed, overwrite_flag)
    if aside is not None:
        error = MixsdError(f"{error} (the {stage} an interrupted --overwrite replaces is kept "
                           f"whole in {aside})")
    raise error


class KeyedCache:
    """``{key: entry}`` in one JSON file, keyed by :func:`fingerprint` of the fields that
    decide an entry; updated under a file lock with an atomic rename, so concurrent runs
    never lose each other's entries nor read a torn file.

    ``legacy(data)``, when given, reads a file written before this cache (any key gets its
    answer; None when it has none)."""

    def __init__(self, path: str | Path,
                 legacy: Callable[[dict[str, Any]], Any] | None = None):
        self.path = Path(path)
        self.legacy = legacy

    @staticmethod
    def key(fields: Any, length: int | None = None) -> str:
        """The key of ``fields`` (a string is taken as a key already)."""
        digest = fields if isinstance(fields, str) else fingerprint(fields)
        return digest if length is None else digest[:length]

    def load(self) -> dict[str, Any]:
        return read_json_or_empty(self.path)

    def get(self, fields: Any) -> Any:
        """The entry of ``fields`` (or a key), None when there is none."""
        data = self.load()
        key = self.key(fields)
        if key in data:
            return data[key]
        return self.legacy(data) if self.legacy is not None and data else None

    def put(self, fields: Any, entry: Any) -> None:
        """Store ``entry`` under ``fields`` (or a key); other keys are kept."""
        key = self.key(fields)
        locked_update_json(self.path, lambda data: data.__setitem__(key, entry))

    def get_or_compute(self, fields: Any, compute: Callable[[], Any]) -> Any:
        """The cached entry of ``fields``, else ``compute()``, stored, then returned."""
        found = self.get(fields)
        if found is None:
            found = compute()
            self.put(fields, found)
        return found
