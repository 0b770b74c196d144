"""Stage configuration: one dataclass per stage, with help text in field metadata.

Precedence is defaults < ``--config file.yaml`` < command-line flags. Every field's help,
choices and range live in one place (:func:`option`) and feed ``--help``, validation errors
and the saved ``config.yaml``.

A composed config (the comparison, made of the targets, train and eval stages) declares the
fields it passes on to a stage with :func:`inherit`: help, choices, range and default come
from the stage's field, and the field also answers to the dotted key ``STAGE.FIELD`` (YAML
``targets.max_new_tokens: 32`` or ``targets: {max_new_tokens: 32}``, flag
``--targets.max-new-tokens 32`` or ``--targets.max_new_tokens 32``) besides its flat name, which is what ``config.yaml`` and
``results.json`` record.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, ClassVar

import yaml

from mixsd.errors import ConfigError

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, flag: str | None = None,
           choices: typing.Sequence[Any] | None = None, min: float | None = None,
           max: float | None = None, default_factory: Any = _MISSING,
           cli: bool = True, positional: bool = False, nargs: str | None = None,
           metavar: str | None = None, later: bool = False, above: float | None = None) -> Any:
    """Declare a config field with its help text, flag name, choices and inclusive range
    (``min``, ``max``; ``above``: an exclusive lower bound, e.g. a learning rate > 0). A float
    is always finite: NaN and infinities are refused wherever a number is read.

    ``positional`` makes the command-line form a positional argument (a verb's operands,
    e.g. the folders of ``mixsd report``); ``nargs`` (``"+"``) lets a list take several
    space-separated values; ``metavar`` names the value in ``--help``. ``later`` marks a
    field added after folders were first made: at its default it is left out of what
    fingerprints a stage (:meth:`StageConfig.decisive_dict`), so those folders still resume
    and their cached entries still hit."""
    meta = {"help": help, "flag": flag, "choices": choices, "min": min, "max": max, "cli": cli,
            "positional": positional, "nargs": nargs, "metavar": metavar, "later": later,
            "above": above}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def inherit(stage: type[StageConfig], name: str, *, also: typing.Sequence[str] = (),
            note: str = "", **changes: Any) -> Any:
    """Declare a field of a composed config as the field ``name`` of ``stage``'s config.

    Help, choices, range and default are the stage's (one definition); ``changes`` replaces
    some of them where the composite needs another value (``default=64``, ``min=0``), and
    says so in one visible place (``later=True`` where the composite gains a field its
    stage had before: see :func:`option`); ``note`` is appended to the help. The field
    answers to the dotted keys ``STAGE.NAME`` (the stage's :attr:`StageConfig.stage` name)
    and ``also`` besides its own name.
    """
    fields = {f.name: f for f in dataclasses.fields(stage)}
    if name not in fields:
        raise TypeError(f"{stage.__name__} has no field {name!r}")
    source = fields[name]
    meta = {k: v for k, v in source.metadata.items() if k != "aliases"}
    meta["flag"] = None  # the composite's flag comes from its own field name
    for key in ("help", "flag", "choices", "min", "max", "above", "cli", "later"):
        if key in changes:
            meta[key] = changes.pop(key)
    meta["help"] += note
    meta["aliases"] = (f"{stage.stage}.{name}", *also)
    default, factory = source.default, source.default_factory
    if "default" in changes:
        default, factory = changes.pop("default"), _MISSING
    if "default_factory" in changes:
        default, factory = _MISSING, changes.pop("default_factory")
    if changes:
        raise TypeError(f"inherit: unknown changes {', '.join(changes)}")
    if factory is not _MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _alias_flag(alias: str) -> str:
    return "--" + alias.replace("_", "-")


def _flag(f: dataclasses.Field) -> str:
    if f.metadata.get("positional"):
        return f.name.upper()  # how errors name an operand
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


class _NotFinite(ConfigError):
    """A number that is NaN or infinite."""


def _base_type(tp: Any) -> tuple[Any, bool]:
    """Return (inner type, optional?) for annotations like ``int | None``."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return tp, False


def _coerce(value: Any, tp: Any, key: str, flag: str) -> Any:
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must not be empty (flag {flag})")
    origin = typing.get_origin(base)
    try:
        if base is dict or origin is dict:
            return _mapping(value)
        if origin in (list, tuple):
            (item_tp,) = typing.get_args(base)[:1] or (str,)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                value = [value]
            try:
                return [_coerce(v, item_tp, key, flag) for v in value]
            except _NotFinite:
                raise
            except ConfigError:
                name = getattr(item_tp, "__name__", str(item_tp))
                bad = next(v for v in value if not _coerces(v, item_tp))
                raise ConfigError(f"{key} must be a comma-separated list of {name} values, "
                                  f"got {bad!r} (flag {flag})") from None
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if not math.isfinite(number):
                raise _NotFinite(f"{key} must be a finite number, got {value!r} (flag {flag})")
            return number
        if base is str:
            if isinstance(value, (dict, list)):
                raise ValueError(value)
            return str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        name = getattr(base, "__name__", str(base))
        raise ConfigError(f"{key} must be of type {name}, got {value!r} (flag {flag})") from None
    return value


def _coerces(value: Any, tp: Any) -> bool:
    try:
        _coerce(value, tp, "", "")
    except ConfigError:
        return False
    return True


def check_finite(value: float, key: str, flag: str) -> float:
    """``value`` as a finite float; NaN or an infinity is a :class:`ConfigError` naming the
    key and flag (for numbers a config parses itself, e.g. ``--method-lr opsd=nan``)."""
    return _coerce(value, float, key, flag)
def _mapping(value: Any) -> dict[str, Any]:
    """A mapping field's value: a mapping (YAML, code) or ``KEY=VALUE[,KEY=VALUE]`` text (the
    command line), each VALUE read as YAML (``true``, ``3``, ``0.5``, ``text``)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if not isinstance(value, (str, list, tuple)):
        raise ValueError(value)
    items = [value] if isinstance(value, str) else list(value)
    found: dict[str, Any] = {}
    for item in items:
        for pair in str(item).split(","):
            if not pair.strip():
                continue
            key, sep, raw = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(value)
            try:
                found[key.strip()] = yaml.safe_load(raw.strip()) if raw.strip() else ""
            except yaml.YAMLError:
                raise ValueError(value) from None
    return found


@dataclasses.dataclass
class StageConfig:
    """Base class of every stage's config: validation, YAML and CLI round-trips."""

    #: the stage's name in dotted keys of a composed config (``targets.max_new_tokens``)
    stage: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -----------------------------------------------------------------
    def validate(self) -> None:
        """Check types, choices and ranges; raise :class:`ConfigError` naming key and flag."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            flag = _flag(f)
            value = _coerce(getattr(self, f.name), hints[f.name], f.name, flag)
            object.__setattr__(self, f.name, value)
            if value is None or isinstance(value, dict):
                continue
            choices, lo, hi = f.metadata.get("choices"), f.metadata.get("min"), f.metadata.get("max")
            above = f.metadata.get("above")
            items = value if isinstance(value, list) else [value]
            for item in items:
                if above is not None and item <= above:
                    rng = f"({above:g}, {'inf' if hi is None else f'{hi:g}'}]"
                    raise ConfigError(f"{f.name} must be in {rng}, got {item:g} (flag {flag})")
                if choices is not None and item not in choices:
                    raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))}, "
                                      f"got {item!r} (flag {flag})")
                if (lo is not None and item < lo) or (hi is not None and item > hi):
                    rng = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
                    raise ConfigError(f"{f.name} must be in {rng}, got {item:g} (flag {flag})")

    # -- dict / yaml ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def later_defaults(cls) -> dict[str, Any]:
        """The defaults of the fields declared ``later`` (added after folders were made)."""
        found = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("later"):
                found[f.name] = f.default_factory() if f.default is _MISSING else f.default
        return found

    def decisive_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the ``later`` fields at their default: what fingerprints a
        stage folder or a cache entry, unchanged by fields added since it was made."""
        later = self.later_defaults()
        return {k: v for k, v in self.to_dict().items()
                if not (k in later and v == later[k])}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Dotted keys of inherited fields -> the field's name (``{"train.rollouts":
        "opsd_rollouts", ...}``)."""
        return {alias: f.name for f in dataclasses.fields(cls)
                for alias in f.metadata.get("aliases", ())}

    @classmethod
    def flat_keys(cls, data: dict[str, Any], *, source: str = "config") -> dict[str, Any]:
        """``data`` with nested stage mappings and dotted keys turned into field names.

        ``{"targets": {"max_new_tokens": 32}}`` and ``{"targets.max_new_tokens": 32}`` both
        become ``{"max_new_tokens": 32}``; two keys of one field with different values are
        an error naming both."""
        aliases = cls.aliases()
        stages = {a.partition(".")[0] for a in aliases}
        names = {f.name for f in dataclasses.fields(cls)}
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            if key in stages and key not in names and isinstance(value, dict):
                items += [(f"{key}.{k}", v) for k, v in value.items()]
            else:
                items.append((key, value))
        flat: dict[str, Any] = {}
        given: dict[str, str] = {}
        for key, value in items:
            if "." in key and key not in names:
                if key not in aliases:
                    raise ConfigError(f"{source}: unknown key '{key}' for {cls.__name__}; "
                                      f"dotted keys: {', '.join(aliases) or 'none'}")
                name = aliases[key]
            else:
                name = key
            if name in flat and flat[name] != value:
                raise ConfigError(f"{source}: '{given[name]}' and '{key}' set the same value "
                                  f"({name}) differently: {flat[name]!r} vs {value!r}")
            flat[name], given[name] = value, key
        return flat

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> StageConfig:
        """Build from a mapping; unknown keys are an error naming the key."""
        data = cls.flat_keys(data, source=source)
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"{source}: unknown key '{key}' for {cls.__name__}; known keys: "
                                  f"{', '.join(known)}")
        return cls(**data)

    @classmethod
    def load_yaml(cls, path: str | Path) -> dict[str, Any]:
        """Read a YAML mapping (validated later, when merged with defaults and flags)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must hold a mapping of keys to values")
        return data

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> StageConfig:
        data = cls.flat_keys(cls.load_yaml(path), source=str(path))
        data.update(overrides)
        return cls.from_dict(data, source=str(path))

    # -- argparse -------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, skip: typing.Iterable[str] = (),
                      add_config: bool = True) -> None:
        """Add one flag per field (defaults suppressed so that YAML values are not masked)."""
        hints = typing.get_type_hints(cls)
        skip = set(skip)
        if add_config and not any("--config" in a.option_strings for a in parser._actions):
            parser.add_argument("--config", metavar="FILE.yaml", default=None,
                                help="YAML file of config values; flags override it")
        for f in dataclasses.fields(cls):
            if f.name in skip or not f.metadata.get("cli", True):
                continue
            base, _ = _base_type(hints[f.name])
            default = f.default if f.default is not _MISSING else (
                f.default_factory() if f.default_factory is not _MISSING else None)
            help_text = f.metadata.get("help", "")
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            if default not in (None, "", [], {}) and not f.metadata.get("positional"):
                help_text = f"{help_text} (default: {shown})"
            aliases = f.metadata.get("aliases", ())
            if aliases:
                help_text += f" [also {', '.join(aliases)}]"
            kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
            if base is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["metavar"] = f.metadata.get("metavar") or (
                    "A,B" if typing.get_origin(base) is list
                    else "KEY=VALUE,..." if dict in (base, typing.get_origin(base))
                    else f.name.upper())
                kwargs["type"] = str
                if f.metadata.get("nargs"):
                    kwargs["nargs"] = f.metadata["nargs"]
            if f.metadata.get("positional"):
                del kwargs["dest"]
                parser.add_argument(f.name, **kwargs)
                continue
            parser.add_argument(_flag(f), **kwargs)
            for alias in aliases:  # the same value under its stage's name; one line of help
                names = dict.fromkeys([_alias_flag(alias), "--" + alias])
                parser.add_argument(*names, **{**kwargs, "help": argparse.SUPPRESS})

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, defaults: dict[str, Any] | None = None,
                  **fixed: Any) -> StageConfig:
        """Resolve defaults (< ``defaults``, a preset) < ``--config`` YAML < flags (< ``fixed``
        values from code)."""
        data: dict[str, Any] = cls.flat_keys(dict(defaults or {}), source="preset")
        if getattr(args, "config", None):
            data.update(cls.flat_keys(cls.load_yaml(args.config), source=args.config))
        names = {f.name for f in dataclasses.fields(cls)}
        data.update({k: v for k, v in vars(args).items() if k in names})
        data.update(fixed)
        return cls.from_dict(data, source=getattr(args, "config", None) or "config")
