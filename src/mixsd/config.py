"""Stage configuration: one dataclass per stage, with help text in field metadata.

Precedence is defaults < ``--config file.yaml`` < command-line flags. Every field's help,
choices and range live in one place (:func:`option`) and feed ``--help``, validation errors
and the saved ``config.yaml``.

A composed config (the comparison, made of the targets, train and eval stages; ``mixsd
inject``) holds each stage's config as a field (:func:`stage_config`: ``train: TrainConfig``),
made from the composite's template and changed per run with :func:`dataclasses.replace`.
A stage field answers to its dotted key ``STAGE.FIELD`` (YAML ``train.lr_scheduler: cosine``
or ``train: {lr_scheduler: cosine}``, flag ``--train.lr-scheduler cosine``) and, where the
composite has always had one, to its flat key (``epochs``, ``opsd_rollouts``), which is what
``config.yaml``, ``results.json`` and the fingerprints record (:meth:`StageConfig.to_dict`).
A value several stages share (the model, the guidance, ``max_new_tokens``) is a field of the
composite declared with :func:`inherit` (help, choices, range and default from one stage's
field); it is set into every stage that has it, and its dotted keys name it too.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
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


def stage_config(template: Callable[[], StageConfig], *, flat: Mapping[str, str] | None = None,
                 fixed: Sequence[str] = (), later: Sequence[str] = (), help: str = "") -> Any:
    """Declare a composed config's stage config (``train: TrainConfig = stage_config(...)``).

    ``template()`` makes it with the composite's defaults. ``flat`` maps the composite's flat
    keys (what its flags, ``config.yaml`` and ``results.json`` have always said:
    ``opsd_rollouts``) to the stage's keys (``rollouts``); ``fixed`` names the stage's
    fields the composite sets itself (per run) or does not use: no key sets them. Every
    other stage key answers to ``STAGE.KEY`` and is recorded (:meth:`StageConfig.to_dict`)
    only where it differs from the template, so fingerprints made before it stay. ``later``
    names flat keys added after folders were made (besides those whose stage field is
    ``later``): left out of the fingerprint at their default."""
    meta = {"help": help, "stage_config": True, "flat": dict(flat or {}),
            "fixed": tuple(fixed), "later_flat": tuple(later), "cli": True}
    return dataclasses.field(default_factory=template, metadata=meta)


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
        """Check types, choices and ranges; raise :class:`ConfigError` naming key and flag;
        then set the shared values into the stage configs of a composite."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            if f.metadata.get("stage_config"):
                continue
            flag = _flag(f)
            value = _coerce(getattr(self, f.name), hints[f.name], f.name, flag)
            object.__setattr__(self, f.name, value)
            if value is None or isinstance(value, dict):
                continue
            _check_range(f, value, flag)
        self._share()

    # -- stage configs of a composite -------------------------------------------------
    @classmethod
    def stage_fields(cls) -> dict[str, dataclasses.Field]:
        """The fields holding a stage's config (:func:`stage_config`), by name."""
        return {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("stage_config")}

    @classmethod
    def _stage_class(cls, name: str) -> type[StageConfig]:
        return typing.get_type_hints(cls)[name]

    @classmethod
    def _flat_of(cls, name: str) -> dict[str, str]:
        """The flat keys of stage field ``name``: {flat key: stage key}, the declared ones
        and those plug-ins give the stage's keys (:meth:`composite_keys`)."""
        return {**cls._stage_class(name).composite_keys(), **cls.stage_fields()[name].metadata["flat"]}

    @classmethod
    def _shared_of(cls, name: str) -> set[str]:
        """The keys of stage ``name`` that are the composite's own (shared) fields."""
        return {a.partition(".")[2] for a in cls.aliases() if a.partition(".")[0] == name}

    def _share(self) -> None:
        """Set each shared value (a field answering to ``STAGE.KEY``) into that stage."""
        stages = self.stage_fields()
        updates: dict[str, dict[str, Any]] = {}
        for f in dataclasses.fields(self):
            for alias in f.metadata.get("aliases", ()):
                name, _, key = alias.partition(".")
                if name in stages and key not in stages[name].metadata["fixed"]:
                    updates.setdefault(name, {})[key] = getattr(self, f.name)
        for name, values in updates.items():
            current = getattr(self, name)
            changed = {k: v for k, v in values.items() if getattr(current, k) != v}
            if changed:
                object.__setattr__(self, name, self._apply(name, current, changed))

    @classmethod
    def _apply(cls, name: str, base: StageConfig, values: Mapping[str, Any]) -> StageConfig:
        """``base`` (stage field ``name``'s config) with ``values``; its errors name the
        composite's keys and flags."""
        try:
            return base.with_values(values)
        except ConfigError as exc:
            raise ConfigError(cls._stage_error(name, str(exc))) from None

    @classmethod
    def _stage_error(cls, name: str, message: str) -> str:
        """A stage's error message in the composite's words: its key and its flag."""
        stage = cls._stage_class(name)
        own = {**{key: k for k, key in cls._flat_of(name).items()},
               **{a.partition(".")[2]: field for a, field in cls.aliases().items()
                  if a.partition(".")[0] == name}}
        keys = {f.name: own.get(f.name, f"{name}.{f.name}") for f in dataclasses.fields(stage)}
        flags = {_flag(f): "--" + keys[f.name].replace("_", "-") for f in dataclasses.fields(stage)}
        message = re.sub(r"\(flag (--[\w.-]+)\)",
                         lambda m: f"(flag {flags.get(m.group(1), m.group(1))})", message)
        lead = re.match(r"(\w+)", message)
        if lead and lead.group(1) in keys:
            return keys[lead.group(1)] + message[lead.end():]
        return f"{name}: {message}"

    def with_values(self, values: Mapping[str, Any]) -> StageConfig:
        """This config with ``values`` replaced (canonical keys, :meth:`key_map`):
        ``FIELD.KEY`` sets one key of a mapping field (or of a stage config)."""
        changes: dict[str, Any] = {}
        for key in sorted(values, key=lambda k: "." in k):  # whole values before their parts
            name, _, sub = key.partition(".")
            if not sub:
                changes[name] = values[key]
            elif name in self.stage_fields():
                changes[name] = self._apply(name, changes.get(name, getattr(self, name)),
                                            {sub: values[key]})
            else:
                merged = changes.get(name, getattr(self, name)) or {}
                changes[name] = {**_mapping(merged), sub: values[key]}
        return dataclasses.replace(self, **changes)

    # -- keys -------------------------------------------------------------------------
    @classmethod
    def extra_keys(cls) -> dict[str, str]:
        """Keys that set one key of a mapping field, ``{key: "FIELD.KEY"}`` (EvalConfig:
        the plug-ins' suite options); none here."""
        return {}

    @classmethod
    def composite_keys(cls) -> dict[str, str]:
        """Flat keys a composite records some of this stage's keys under, declared by
        plug-ins (``{flat key: stage key}``); none here."""
        return {}

    @classmethod
    def key_spec(cls, key: str) -> tuple[Any, Mapping[str, Any]]:
        """The type and metadata (help, range) of one key: a field's, or an extra key's."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        return typing.get_type_hints(cls)[key], fields[key].metadata

    @classmethod
    def key_map(cls) -> dict[str, str]:
        """Every key a config file or flag may use -> its canonical key: a field's name,
        ``FIELD.KEY`` inside a mapping field, ``STAGE.KEY`` of a stage config; the dotted
        keys of a shared field name the composite's field."""
        found = {f.name: f.name for f in dataclasses.fields(cls)}
        found.update(cls.extra_keys())
        for name, f in cls.stage_fields().items():
            inner = cls._stage_class(name).key_map()
            fixed = set(f.metadata["fixed"])
            found.update({f"{name}.{key}": f"{name}.{target}" for key, target in inner.items()
                          if target.partition(".")[0] not in fixed})
            found.update({flat: f"{name}.{inner[key]}"
                          for flat, key in cls._flat_of(name).items()})
        found.update(cls.aliases())
        found.update({v: v for v in list(found.values())})
        return found

    # -- dict / yaml ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config as recorded (``config.yaml``, ``results.json``, fingerprints): every
        field; a stage config as its flat keys, and its dotted keys where they differ from
        the composite's template."""
        stages = self.stage_fields()
        if not stages:
            return dataclasses.asdict(self)
        found: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in stages:
                found.update(self._recorded(f.name))
            else:
                found[f.name] = copy.deepcopy(getattr(self, f.name))
        return found

    def _recorded(self, name: str) -> dict[str, Any]:
        """Stage field ``name`` as recorded (:meth:`to_dict`)."""
        values = getattr(self, name).to_dict()
        template = self.stage_fields()[name].default_factory().to_dict()
        flat = self._flat_of(name)
        skip = {*flat.values(), *self._shared_of(name), *self.stage_fields()[name].metadata["fixed"]}
        found = {k: values[key] for k, key in flat.items()}
        found.update({f"{name}.{k}": v for k, v in values.items()
                      if k not in skip and v != template.get(k)})
        return found

    @classmethod
    def later_defaults(cls) -> dict[str, Any]:
        """The defaults of the fields declared ``later`` (added after folders were made),
        flat keys of stage configs included."""
        found = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("stage_config"):
                found.update(cls._later_flat(f.name))
            elif f.metadata.get("later"):
                found[f.name] = f.default_factory() if f.default is _MISSING else f.default
        return found

    @classmethod
    def _later_flat(cls, name: str) -> dict[str, Any]:
        f = cls.stage_fields()[name]
        values = f.default_factory().to_dict()
        stage_later = cls._stage_class(name).later_defaults()
        later = set(f.metadata["later_flat"])
        return {k: values[key] for k, key in cls._flat_of(name).items()
                if k in later or key in stage_later}

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
        """Dotted keys of shared fields -> the field's name (``{"train.max_new_tokens":
        "max_new_tokens", ...}``)."""
        return {alias: f.name for f in dataclasses.fields(cls)
                for alias in f.metadata.get("aliases", ())}

    @classmethod
    def flat_keys(cls, data: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
        """``data`` with every key made canonical (:meth:`key_map`).

        ``{"train": {"epochs": 3}}``, ``{"train.epochs": 3}`` and ``{"epochs": 3}`` all
        become ``{"train.epochs": 3}``; two keys of one value with different values are an
        error naming both; a plain unknown key is left for :meth:`from_dict` to refuse."""
        keys = cls.key_map()
        names = {f.name for f in dataclasses.fields(cls)}
        groups = {*cls.stage_fields(), *(a.partition(".")[0] for a in cls.aliases()
                                         if a.partition(".")[0] not in names)}
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            if key in groups and isinstance(value, dict):
                items += [(f"{key}.{k}", v) for k, v in value.items()]
            else:
                items.append((key, value))
        flat: dict[str, Any] = {}
        given: dict[str, str] = {}
        for key, value in items:
            if key not in keys and "." in key:
                dotted = sorted(k for k in keys if "." in k and k.count(".") == 1)
                raise ConfigError(f"{source}: unknown key '{key}' for {cls.__name__}; dotted "
                                  f"keys: {', '.join(dotted) or 'none'}")
            name = keys.get(key, key)
            if name in flat and flat[name] != value:
                raise ConfigError(f"{source}: '{given[name]}' and '{key}' set the same value "
                                  f"({name}) differently: {flat[name]!r} vs {value!r}")
            flat[name], given[name] = value, key
        return flat

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> StageConfig:
        """Build from a mapping; unknown keys are an error naming the key."""
        data = cls.flat_keys(data, source=source)
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            name, _, sub = key.partition(".")
            if name not in known:
                raise ConfigError(f"{source}: unknown key '{key}' for {cls.__name__}; known "
                                  f"keys: {', '.join(known)}")
            if sub:
                parts.setdefault(name, {})[sub] = value
            else:
                values[name] = value
        stages = cls.stage_fields()
        for name, sub in parts.items():
            if name in stages:
                base = values.get(name) or stages[name].default_factory()
                values[name] = cls._apply(name, base, sub)
            else:
                values[name] = {**_mapping(values.get(name) or {}), **sub}
        return cls(**values)

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
        data.update(cls.flat_keys(overrides, source="overrides"))
        return cls.from_dict(data, source=str(path))

    # -- argparse -------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, skip: typing.Iterable[str] = (),
                      add_config: bool = True) -> None:
        """Add one flag per field (defaults suppressed so that YAML values are not masked);
        a stage config adds its flat keys' flags and, hidden from ``--help``, its dotted
        keys'."""
        hints = typing.get_type_hints(cls)
        skip = set(skip)
        if add_config and not any("--config" in a.option_strings for a in parser._actions):
            parser.add_argument("--config", metavar="FILE.yaml", default=None,
                                help="YAML file of config values; flags override it")
        for f in dataclasses.fields(cls):
            if f.name in skip or not f.metadata.get("cli", True):
                continue
            if f.metadata.get("stage_config"):
                cls._add_stage_arguments(parser, f.name)
                continue
            default = f.default if f.default is not _MISSING else (
                f.default_factory() if f.default_factory is not _MISSING else None)
            if f.metadata.get("positional"):
                parser.add_argument(f.name, **_argument(hints[f.name], f.metadata, default,
                                                        name=f.name))
                continue
            aliases = f.metadata.get("aliases", ())
            kwargs = _argument(hints[f.name], f.metadata, default, aliases=aliases, dest=f.name)
            parser.add_argument(_flag(f), **kwargs)
            for alias in aliases:  # the same value under its stage's name; one line of help
                names = dict.fromkeys([_alias_flag(alias), "--" + alias])
                parser.add_argument(*names, **{**kwargs, "help": argparse.SUPPRESS})
        for key, target in cls.extra_keys().items():
            tp, meta = cls.key_spec(key)
            parser.add_argument("--" + key.replace("_", "-"),
                                **_argument(tp, meta, meta.get("default"), dest=target,
                                            name=key))

    @classmethod
    def _add_stage_arguments(cls, parser: argparse.ArgumentParser, name: str) -> None:
        """The flags of stage field ``name``: ``--FLAT-KEY`` (shown) and ``--STAGE.KEY``."""
        stage = cls._stage_class(name)
        template = cls.stage_fields()[name].default_factory().to_dict()
        inner = stage.key_map()
        flat = cls._flat_of(name)
        for key, target in flat.items():
            tp, meta = stage.key_spec(target)
            parser.add_argument(_alias_flag(key), **_argument(
                tp, meta, template.get(target), aliases=(f"{name}.{target}",),
                dest=f"{name}.{inner[target]}", name=key))
        fixed = set(cls.stage_fields()[name].metadata["fixed"]) | cls._shared_of(name)
        keys = [f.name for f in dataclasses.fields(stage) if f.metadata.get("cli", True)]
        for key in [*keys, *stage.extra_keys()]:
            if key in fixed or inner[key].partition(".")[0] in fixed:
                continue
            tp, meta = stage.key_spec(key)
            dotted = f"{name}.{key}"
            parser.add_argument(*dict.fromkeys([_alias_flag(dotted), "--" + dotted]),
                                **{**_argument(tp, meta, None, dest=f"{name}.{inner[key]}"),
                                   "help": argparse.SUPPRESS})

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, defaults: dict[str, Any] | None = None,
                  **fixed: Any) -> StageConfig:
        """Resolve defaults (< ``defaults``, a preset) < ``--config`` YAML < flags (< ``fixed``
        values from code)."""
        data: dict[str, Any] = cls.flat_keys(dict(defaults or {}), source="preset")
        if getattr(args, "config", None):
            data.update(cls.flat_keys(cls.load_yaml(args.config), source=args.config))
        keys = cls.key_map()
        data.update({k: v for k, v in vars(args).items() if k in keys})
        data.update(cls.flat_keys(fixed, source="code"))
        return cls.from_dict(data, source=getattr(args, "config", None) or "config")


def _check_range(f: dataclasses.Field, value: Any, flag: str) -> None:
    """Check a coerced value against the field's choices and range."""
    choices, lo, hi = f.metadata.get("choices"), f.metadata.get("min"), f.metadata.get("max")
    above = f.metadata.get("above")
    for item in value if isinstance(value, list) else [value]:
        if above is not None and item <= above:
            rng = f"({above:g}, {'inf' if hi is None else f'{hi:g}'}]"
            raise ConfigError(f"{f.name} must be in {rng}, got {item:g} (flag {flag})")
        if choices is not None and item not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))}, "
                              f"got {item!r} (flag {flag})")
        if (lo is not None and item < lo) or (hi is not None and item > hi):
            rng = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
            raise ConfigError(f"{f.name} must be in {rng}, got {item:g} (flag {flag})")


def _argument(tp: Any, meta: Mapping[str, Any], default: Any, *,
              aliases: Sequence[str] = (), dest: str | None = None,
              name: str = "") -> dict[str, Any]:
    """The ``add_argument`` keywords of one key: its help (with the default and the dotted
    keys it also answers to), its value's form, a suppressed default."""
    base, _ = _base_type(tp)
    help_text = meta.get("help", "")
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    if default not in (None, "", [], {}) and not meta.get("positional"):
        help_text = f"{help_text} (default: {shown})"
    if aliases:
        help_text += f" [also {', '.join(aliases)}]"
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text}
    if dest is not None:
        kwargs["dest"] = dest
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        return kwargs
    kwargs["metavar"] = meta.get("metavar") or (
        "A,B" if typing.get_origin(base) is list
        else "KEY=VALUE,..." if dict in (base, typing.get_origin(base))
        else (name or str(dest)).rpartition(".")[2].upper())
    kwargs["type"] = str
    if meta.get("nargs"):
        kwargs["nargs"] = meta["nargs"]
    return kwargs
