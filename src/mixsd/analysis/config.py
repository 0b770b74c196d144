"""Configs of `mixsd analyze nll`, `mixsd analyze fisher` and `mixsd analyze rules`.

Every value is checked here, before the base model loads; the entry functions are
:func:`mixsd.analysis.run.analyze_nll`, :func:`~mixsd.analysis.run.analyze_fisher` and
:func:`mixsd.analysis.rules.run_rules` (whose mixing knobs are a
:class:`~mixsd.targets.config.TargetsConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError
from mixsd.models import check_device
from mixsd.prompts import check_guidance
from mixsd.targets.words import MIX_UNITS


def _require(value: object, key: str) -> None:
    if not value:
        raise ConfigError(f"{key} is required (flag --{key.replace('_', '-')})")


@dataclass
class NLLConfig(StageConfig):
    """Mean per-token NLL of targets files under the BASE model, given the naive prompt."""

    stage = "nll"

    model: str = option("", "the BASE model: id, local folder, or an alias")
    targets: list[str] = option(default_factory=list, nargs="+", metavar="PATH",
                                help="targets folders or JSONL files (or records files: their "
                                "answers are scored)")
    guidance: str = option("knowledge", "preset whose naive prompt layout training used "
                           "(knowledge, toy, ...)")
    batch_size: int = option(8, "sequences per forward pass", min=1)
    include_unverified: bool = option(False, "also score targets that failed verification "
                                      "(training skips them)")
    out: str | None = option(None, "folder for the JSON (and plots)", metavar="DIR")
    device: str = option("auto", "device: auto, cpu, cuda, ...")

    def validate(self) -> None:
        super().validate()
        _require(self.model, "model")
        _require(self.targets, "targets")
        check_guidance(self.guidance)
        check_device(self.device)


@dataclass
class FisherConfig(StageConfig):
    """Diagonal empirical Fisher of the base model on held-out suites, and the
    Fisher-weighted displacement of checkpoints."""

    stage = "fisher"

    model: str = option("", "the BASE model: id, local folder, or an alias")
    checkpoints: list[str] = option(default_factory=list, nargs="+", metavar="DIR",
                                    help="checkpoint folders, LoRA adapters, or run folders "
                                    "with epoch-N/")
    suite: list[str] = option(default_factory=list, help="held-out suite(s) with reference "
                              "answers: toy:NAME, records:F.jsonl, math:F.jsonl, mcq:F.jsonl "
                              "(comma-separated)")
    max_examples: int = option(256, "first N held-out examples used for the Fisher", min=1)
    guidance: str = option("knowledge", "prompt layout of records suites (knowledge, toy, ...)")
    out: str | None = option(None, "folder for the JSON (and plots)", metavar="DIR")
    device: str = option("auto", "device: auto, cpu, cuda, ...")

    def validate(self) -> None:
        from mixsd.evaluation.suites import check_suites

        super().validate()
        _require(self.model, "model")
        _require(self.checkpoints, "checkpoints")
        _require(self.suite, "suite")
        check_suites(self.suite)
        check_guidance(self.guidance)
        check_device(self.device)


@dataclass
class RulesConfig(StageConfig):
    """The grid of `mixsd analyze rules`: mixing units x lambdas on the same records (the
    other target knobs are a TargetsConfig)."""

    stage = "rules"

    data: str = option("", "knowledge records", metavar="FILE")
    out: str | None = option(None, "write STEM.md and STEM.json", metavar="STEM")
    lambdas: list[float] = option(default_factory=lambda: [0.3, 0.5, 0.7],
                                  help="lambdas (comma-separated)", min=0.0, max=1.0)
    units: list[str] = option(default_factory=lambda: list(MIX_UNITS),
                              help="mixing units (comma-separated)", choices=MIX_UNITS)
    n_records: int | None = option(None, "the first N records only (default: all)", min=1)

    def validate(self) -> None:
        super().validate()
        _require(self.data, "data")
