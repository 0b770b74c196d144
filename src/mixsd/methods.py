"""What "method" means, in one place: the three vocabularies and how they map onto each other.

Three stages use the word, each for its own choice, and their words are recorded in artifacts
(targets files' ``meta.method``, run folders' ``config.yaml``, ``results.json``'s
``runs[].method``), so they stay as they are; this module is where they are defined and mapped:

``mixsd targets --method`` (:data:`TARGET_METHODS`): what a supervision target is.
    ``mixsd``: mixed from the naive and expert conditionals (docs/method.md, "The method");
    ``sft``: the reference answer y* itself.
``mixsd train --method`` (:data:`TRAIN_METHODS`): the training objective.
    ``nll``: next-token NLL on a targets file (SFT, offline self-distillation, MixSD);
    ``opsd``: on-policy self-distillation on a records file.
``mixsd compare --methods`` (:data:`METHOD_KINDS`, parsed by :func:`parse_method`): the
    methods of docs/method.md's comparison, each one (targets method, training method) pair:

    ==================  ================  ===============
    compare method      targets method    train method
    ==================  ================  ===============
    ``sft``             ``sft``           ``nll``
    ``sd0``             ``mixsd`` (λ=0)   ``nll``
    ``mixsd:λ[/UNIT]``  ``mixsd`` (λ)     ``nll``
    ``opsd``            none              ``opsd``
    ``memit``           none              none (an edit)
    ==================  ================  ===============

``results.json`` records the compare method's kind (``sft``, ``sd0``, ``mixsd``, ``opsd``,
``memit``) and λ under the key ``"lambda"`` (the code's ``mix_lambda``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mixsd.errors import ConfigError

TARGET_METHODS = ("mixsd", "sft")
TRAIN_METHODS = ("nll", "opsd")
METHOD_KINDS = ("sft", "sd0", "mixsd", "opsd", "memit")
DEFAULT_METHODS = ("sft", "sd0", "mixsd:0.3", "mixsd:0.5", "mixsd:0.7", "opsd")

# compare kind -> (targets method, train method); None: that stage does not run
STAGE_METHODS: dict[str, tuple[str | None, str | None]] = {
    "sft": ("sft", "nll"), "sd0": ("mixsd", "nll"), "mixsd": ("mixsd", "nll"),
    "opsd": (None, "opsd"), "memit": (None, None)}


@dataclass(frozen=True)
class MethodSpec:
    """One method of the grid: ``sft``, ``sd0`` (lambda = 0), ``mixsd:LAMBDA``, ``opsd`` or
    ``memit`` (editing, no training: :mod:`mixsd.compare.memit`), optionally with a mixing
    unit (``mixsd:0.5/word``, ``mixsd:0.5/span``; default the paper's ``token``) and its own
    expert guidance preset: ``mixsd:0.3@toy-own``."""

    spec: str
    kind: str
    mix_lambda: float | None
    guidance: str | None
    mix_unit: str = "token"

    @property
    def label(self) -> str:
        """A file-system friendly name: ``mixsd-0.3``, ``mixsd-0.5-word``, ``sd0-toy-own``."""
        base = f"{self.kind}-{self.mix_lambda:g}" if self.kind == "mixsd" else self.kind
        base += f"-{self.mix_unit}" if self.mix_unit != "token" else ""
        return base + (f"-{self.guidance}" if self.guidance else "")

    @property
    def name(self) -> str:
        return self.spec

    @property
    def targets_method(self) -> str | None:
        """The ``mixsd targets --method`` that builds this method's targets (None: none)."""
        return STAGE_METHODS[self.kind][0]

    @property
    def train_method(self) -> str | None:
        """The ``mixsd train --method`` that trains this method (None: no training)."""
        return STAGE_METHODS[self.kind][1]


def parse_method(spec: str) -> MethodSpec:
    """Parse a method spec; errors name the flag."""
    from mixsd.targets.words import MIX_UNITS

    text, _, guidance = spec.strip().partition("@")
    text, _, unit = text.partition("/")
    kind, _, value = text.partition(":")
    if kind not in METHOD_KINDS:
        raise ConfigError(f"methods: unknown method {spec!r}; use sft, sd0, mixsd:LAMBDA[/UNIT], "
                          "opsd or memit (optionally @GUIDANCE) (flag --methods)")
    mix_lambda: float | None = None
    if kind == "mixsd":
        try:
            mix_lambda = float(value)
        except ValueError:
            raise ConfigError(f"methods: {spec!r} needs a lambda, e.g. mixsd:0.3 "
                              "(flag --methods)") from None
        if not 0.0 <= mix_lambda <= 1.0:
            raise ConfigError(f"methods: lambda must be in [0, 1], got {mix_lambda:g} in "
                              f"{spec!r} (flag --methods)")
    elif value:
        raise ConfigError(f"methods: {kind} takes no value, got {spec!r} (flag --methods)")
    elif kind == "sd0":
        mix_lambda = 0.0
    if unit and (kind != "mixsd" or unit not in MIX_UNITS):
        raise ConfigError(f"methods: {spec!r}: a mixing unit follows mixsd:LAMBDA and is one of "
                          f"{', '.join(MIX_UNITS)}, e.g. mixsd:0.5/word (flag --methods)")
    return MethodSpec(spec.strip(), kind, mix_lambda, guidance or None, unit or "token")


def parse_method_lrs(items: list[str], specs: list[MethodSpec]) -> dict[str, list[float]]:
    """``--method-lr`` items (``METHOD=LR``, METHOD a spec of ``specs`` or a kind) as
    ``{method: [lr, ...]}``; a malformed item or an unknown method is a ConfigError."""
    known = {s.name for s in specs} | {s.kind for s in specs}
    found: dict[str, list[float]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            lr = float(value)
        except ValueError:
            lr = -1.0
        if not sep or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"method_lr: expected METHOD=LR with a finite LR > 0 (e.g. "
                              f"opsd=1e-2), got {item!r} (flag --method-lr)")
        if key.strip() not in known:
            raise ConfigError(f"method_lr: {key.strip()!r} is none of the methods "
                              f"{', '.join(s.name for s in specs)} (flag --method-lr)")
        found.setdefault(key.strip(), []).append(lr)
    return found
