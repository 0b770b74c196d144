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
* ``overwrite``: a new run over the old one.

A folder written before this layer (a ``run.json`` without a fingerprint) is compared by
the fields its ``config.yaml`` records (or the stage's ``legacy`` reader), so old folders
keep working. :class:`KeyedCache` is the one keyed, locked cache (base scores), keyed by
the same :func:`fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.io import locked_update_json, read_json_or_empty, write_run_info

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


@dataclass
class StageDir:
    """An opened stage folder: ``state`` is ``"new"`` or ``"resume"``; ``previous`` is the
    ``run.json`` found there (``{}`` for a new run)."""

    path: Path
    stage: str
    fields: dict[str, Any]
    fingerprint: str
    state: str
    previous: dict[str, Any] = field(default_factory=dict)

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


def refusal(path: Path, stage: str, changed: list[str], overwrite_flag: str | None) -> MixsdError:
    """The one-line error of a folder made with other values of ``changed``."""
    what = ", ".join(changed) if changed else "unrecorded settings"
    todo = "re-run the same command to resume it"
    todo += f", pass {overwrite_flag} to replace it," if overwrite_flag else ""
    return MixsdError(f"{path} holds a {stage} made with other values of {what}; {todo} "
                      "or choose another --out")


def open_stage(path: str | Path, stage: str, fields: Mapping[str, Any], *,
               mutable: Iterable[str] = (), overwrite: bool = False,
               overwrite_flag: str | None = None, has_outputs: bool = True,
               legacy: Callable[[Path], Mapping[str, Any] | None] | None = None,
               defaults: Mapping[str, Any] | None = None) -> StageDir:
    """Open the folder of one stage: new, resume (same fingerprint), refuse, or overwrite.

    ``fields`` decide the stage's outputs; the ``mutable`` ones among them may change
    between invocations and are left out of the fingerprint. ``overwrite`` starts a new run
    whatever is there (``overwrite_flag``, e.g. ``"--overwrite"``, is named in a refusal
    where the stage has one). ``has_outputs=False`` says the folder keeps nothing worth
    resuming yet, so a mismatch starts again instead of refusing. A ``run.json`` without a
    fingerprint (written before this layer) is compared through ``legacy(path)`` (default:
    its ``config.yaml``) on the fields both know. ``defaults`` are the defaults of fields
    added later (:meth:`mixsd.config.StageConfig.later_defaults`): one missing on either side
    and at its default on the other is no change. Nothing is written here: the stage calls
    :meth:`StageDir.write_info`.
    """
    path = Path(path)
    kept = decisive(fields, mutable)
    digest = fingerprint(kept)

    def opened(state: str, previous: dict[str, Any]) -> StageDir:
        return StageDir(path, stage, kept, digest, state, previous)

    previous = read_json_or_empty(path / RUN_INFO)
    if overwrite or not previous and not (path / CONFIG_FILE).is_file():
        return opened("new", {})
    if "fingerprint" in previous:
        if previous["fingerprint"] == digest:
            return opened("resume", previous)
        changed = changed_fields(previous.get("fields") or {}, kept, defaults=defaults)
        if not changed:
            return opened("resume", previous)
    else:
        old = (legacy or read_config_fields)(path)
        if old is None:
            return opened("new", {})
        changed = changed_fields(decisive(old, mutable), kept, only_common=True)
        if not changed:
            return opened("resume", previous)
    if not has_outputs:
        return opened("new", {})
    raise refusal(path, stage, changed, overwrite_flag)


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
