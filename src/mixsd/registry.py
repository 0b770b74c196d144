"""Explicit registries of what plug-ins add: model aliases and formats, guidance presets,
suite kinds, corpora, per-model defaults, chat families, MEMIT text sources and CLI verbs.

A plug-in is a module (or a callable) with ``register(r)``, where ``r`` is
:data:`REGISTRIES`; it calls ``r.models.register(...)``, ``r.guidance.register(...)`` and so
on. Nothing registers by being imported: the first read of any registry (``get``, ``names``,
``in``) calls :func:`load_plugins`, which runs the built-in plug-ins (:data:`BUILTIN_PLUGINS`)
and then every ``mixsd.plugins`` entry point of the installed packages, once per process.

A third-party package declares its plug-in in its ``pyproject.toml``::

    [project.entry-points."mixsd.plugins"]
    tiny = "tiny_mixsd.plugin"          # a module with register(r), or "pkg.mod:register"

This module imports nothing of mixsd but :mod:`mixsd.errors`, so every other module may
import it at module level.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mixsd.errors import ConfigError

T = TypeVar("T")

#: the plug-ins shipped with mixsd, run in this order before any entry point
BUILTIN_PLUGINS = ("mixsd.prompts", "mixsd.models", "mixsd.evaluation.suites",
                   "mixsd.toyworld.plugin")
ENTRY_POINT_GROUP = "mixsd.plugins"


class Registry(Generic[T]):
    """Names -> values of one kind; reading it first loads the plug-ins.

    Args:
        what: what a value is, as error messages name it (``"model alias"``).
        flag: the command-line flag that takes a name (``"--model"``), named by errors.
    """

    def __init__(self, what: str, flag: str):
        self.what = what
        self.flag = flag
        self._items: dict[str, T] = {}

    def register(self, name: str, value: T, *, replace: bool = False) -> T:
        """Make ``value`` available as ``name``; a second registration of a name is an
        error unless ``replace``."""
        if name in self._items and not replace:
            raise ConfigError(f"{self.what} {name!r} is registered twice (a plug-in clash)")
        self._items[name] = value
        return value

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error when it is unknown)."""
        self._items.pop(name, None)

    def get(self, name: str, *, flag: str | None = None) -> T:
        """The value of ``name``; an unknown name is one :class:`ConfigError` line listing
        the registered names and the flag."""
        load_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.what} {name!r}; choose from "
                              f"{', '.join(self._items) or 'none'} (flag {flag or self.flag})"
                              ) from None

    def find(self, name: str) -> T | None:
        """The value of ``name``, or None."""
        load_plugins()
        return self._items.get(name)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        load_plugins()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items


@dataclass(frozen=True)
class SuiteOption:
    """An option of a plug-in's suite kind (the toy world's ``toy_items``): ``mixsd eval
    --suite-options NAME=VALUE`` or its own key (``--toy-items``, ``eval.toy_items``).

    ``recorded``: always in a recorded config and its fingerprint, even at its default (an
    option that was a field of the eval config before plug-ins had options); ``also``: the
    flat keys composed configs record it under (the comparison's ``eval_items``)."""

    default: Any
    help: str = ""
    min: float | None = None
    recorded: bool = False
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteKind:
    """A suite kind of ``--suite KIND[:REST]``.

    ``build(spec, rest, opts)`` returns ``{name: suite}``; ``check(spec, rest, flag)`` (optional)
    raises a :class:`ConfigError` before any model loads; ``usage`` is how the list of kinds
    shows it (``toy``, ``math:...``)."""

    build: Callable[[str, str, dict], dict[str, Any]]
    check: Callable[[str, str, str], None] | None = None
    usage: str = ""
    #: the kind's own options, set in ``EvalConfig.suite_options`` (and by their own keys)
    options: Mapping[str, SuiteOption] = field(default_factory=dict)


def suite_options() -> dict[str, SuiteOption]:
    """Every registered suite kind's options, by name."""
    return {name: option for kind in REGISTRIES.suite_kinds.names()
            for name, option in REGISTRIES.suite_kinds.get(kind).options.items()}


@dataclass(frozen=True)
class CorpusSource:
    """A corpus known by name (``--corpus NAME``): ``records(n_facts, seed)`` returns the
    records (``n_facts`` None: its default size); ``model``, when set, is the only model
    alias it is made for."""

    records: Callable[[int | None, int], list]
    model: str | None = None


@dataclass(frozen=True)
class ModelDefaults:
    """What ``auto`` (or nothing) resolves to for one model alias."""

    guidance: str = "knowledge"
    suites: tuple[str, ...] = ()
    corpus: str | None = None  # the registered corpus ``mixsd compare`` injects by default
    text_source: str | None = None  # MEMIT's generic text (None: the model's generations)
    lr: float | None = None  # the learning rate `mixsd inject` starts from (None: its own)


@dataclass(frozen=True)
class ChatFamily:
    """The chat conventions a family of models needs by default, recognised by its chat
    template: every template that contains ``marker`` (the argument it reads, the family's
    special token) gets ``template_kwargs`` and ``system_prompt`` unless the user sets them.

    The Qwen3 family (``marker="enable_thinking"``) is built in: its template opens a
    ``<think>`` block unless ``enable_thinking=False`` is passed, so mixsd turns thinking off
    unless asked (:mod:`mixsd.prompts`)."""

    marker: str
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None

    def matches(self, chat_template: str | None) -> bool:
        """Whether a tokenizer's chat template belongs to the family."""
        return bool(chat_template) and self.marker in str(chat_template)


@dataclass(frozen=True)
class TextSource:
    """Generic text of MEMIT's covariance: ``texts(n, seed)`` and context
    ``prefixes(n, words, seed)``."""

    texts: Callable[[int, int], list[str]]
    prefixes: Callable[[int, int, int], list[str]]


@dataclass(frozen=True)
class Verb:
    """A CLI verb added by a plug-in: ``module`` provides ``add_arguments`` and ``run`` (as
    the modules of :mod:`mixsd.commands`); ``help`` is its line in ``mixsd --help``."""

    module: str
    help: str


@dataclass
class Registries:
    """Every registry, handed to each plug-in's ``register``."""

    models: Registry[Callable[[], str]] = field(
        default_factory=lambda: Registry("model alias", "--model"))
    model_formats: Registry[Callable[[str], Any]] = field(
        default_factory=lambda: Registry("model file format", "--model"))
    guidance: Registry[Any] = field(
        default_factory=lambda: Registry("guidance preset", "--guidance"))
    suite_kinds: Registry[SuiteKind] = field(
        default_factory=lambda: Registry("suite kind", "--suite"))
    corpora: Registry[CorpusSource] = field(default_factory=lambda: Registry("corpus", "--corpus"))
    model_defaults: Registry[ModelDefaults] = field(
        default_factory=lambda: Registry("model", "--model"))
    chat_families: Registry[ChatFamily] = field(
        default_factory=lambda: Registry("chat family", "--chat-template-kwargs"))
    text_sources: Registry[TextSource] = field(
        default_factory=lambda: Registry("text source", "--cov-source"))
    verbs: Registry[Verb] = field(default_factory=lambda: Registry("verb", "VERB"))
    #: the model of commands that need one and get none (``mixsd compare``, ``mixsd edit``)
    default_model: str = ""

    def all(self) -> list[Registry]:
        return [v for v in vars(self).values() if isinstance(v, Registry)]


REGISTRIES = Registries()
_state = {"loaded": False}


def _plugin_register(obj: Any, name: str) -> Callable[[Registries], None]:
    fn = obj if callable(obj) else getattr(obj, "register", None)
    if not callable(fn):
        raise ConfigError(f"mixsd plug-in {name!r} has no register(r) function")
    return fn


def load_plugin(plugin: Any, name: str | None = None) -> None:
    """Run one plug-in: a module path (``"pkg.plugin"``), a module, or a ``register``
    callable."""
    if isinstance(plugin, str):
        name, plugin = plugin, importlib.import_module(plugin)
    _plugin_register(plugin, name or repr(plugin))(REGISTRIES)


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> None:
    """Run the built-in plug-ins, then the ``mixsd.plugins`` entry points; once."""
    if _state["loaded"]:
        return
    _state["loaded"] = True  # first: a plug-in that reads a registry must not recurse
    for name in BUILTIN_PLUGINS:
        load_plugin(name)
    for ep in _entry_points():
        try:
            obj = ep.load()
        except Exception as exc:  # a broken third-party package: one line, not a traceback
            raise ConfigError(f"mixsd plug-in {ep.name!r} ({ep.value}) failed to load: "
                              f"{exc}") from None
        load_plugin(obj, ep.name)


def default_model() -> str:
    """The registered default model alias (``--model`` of commands that need one)."""
    load_plugins()
    if not REGISTRIES.default_model:
        raise ConfigError("no default model is registered: pass --model")
    return REGISTRIES.default_model


def model_defaults(model: str | None) -> ModelDefaults:
    """What ``auto`` resolves to for ``model``: its registered defaults, else the generic
    ones (knowledge guidance, no suites, the model's own generations for MEMIT)."""
    found = REGISTRIES.model_defaults.find(model) if model else None
    return found or ModelDefaults()


@contextlib.contextmanager
def isolated(*, reload: bool = False) -> Iterator[Registries]:
    """Within the block, registrations are undone afterwards: for tests of plug-ins. With
    ``reload`` the registries start empty and the next read loads every plug-in again
    (entry points included)."""
    load_plugins()
    saved = [(reg, dict(reg._items)) for reg in REGISTRIES.all()]
    default = REGISTRIES.default_model
    if reload:
        for reg in REGISTRIES.all():
            reg._items = {}
        REGISTRIES.default_model = ""
        _state["loaded"] = False
    try:
        yield REGISTRIES
    finally:
        for reg, items in saved:
            reg._items = items
        REGISTRIES.default_model = default
        _state["loaded"] = True
