"""The config of `mixsd edit` and of the ``memit`` method of `mixsd compare`.

Defaults were chosen on a few toy-world facts (see docs/memit-toy/README.md); on another
model start from them and check a handful of edits before a full run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError
from mixsd.models import check_device
from mixsd.prompts import check_guidance
from mixsd.registry import REGISTRIES, default_model, model_defaults

GENERATIONS = "generations"
TARGETS = ("answer_key", "answer")


@dataclass
class EditConfig(StageConfig):
    """MEMIT (Meng et al., 2022): write many facts at once into the MLP down-projections of a
    range of layers, with the closed form dW = R K^T (cov_weight * C + K K^T)^-1."""

    stage = "edit"

    model: str = option(help="base model: hub id, local folder, or an alias",
                        default_factory=default_model)
    data: str = option("", "records JSONL of the facts to write (each needs a subject)")
    out: str = option("runs/edit", "output folder: the edited model, edit.json, run.json")
    layers: list[int] = option(default_factory=list, help="decoder layers whose MLP down-"
                               "projection is edited (default: the lower-middle fifth, "
                               "n/10 .. n/10+n/5-1; layer 0 of a 2-layer model)", min=0)
    target: str = option("answer_key", "what the edited model should emit after the naive "
                         "prompt: the answer_key (MEMIT's object) or the whole reference "
                         "answer y* (teacher-forced)", choices=TARGETS)
    cov_weight: float = option(100.0, "lambda_c: weight of the key covariance C against the "
                               "new keys (larger = smaller, more local updates)", min=0)
    cov_source: str = option("auto", "generic text of C and of the context prefixes: a "
                             "registered text source (a plug-in's, e.g. the toy world's "
                             "documents), generations (the model's own text on held-out "
                             "prompts); auto = the model's registered source, else generations")
    cov_texts: int = option(2000, "generic texts whose keys estimate C", min=1)
    cov_max_tokens: int = option(128, "tokens kept of each generic text", min=2)
    v_steps: int = option(60, "optimisation steps of each fact's target value", min=1)
    v_lr: float = option(0.2, "Adam learning rate of the target values", min=0)
    kl_weight: float = option(0.0625, "weight of the KL term that keeps the subject's other "
                              "predictions (on kl_prompts)", min=0)
    v_weight_decay: float = option(0.5, "penalty on |delta|^2 / |h|^2 of the target values",
                                   min=0)
    clamp_norm: float = option(4.0, "largest |delta| / |h| of a target value", min=0)
    kl_prompts: list[str] = option(default_factory=lambda: ["{subject} is a"],
                                   help="prompts whose next-token distribution (after the "
                                   "subject) the KL term keeps; {subject} is filled in")
    n_prefixes: int = option(0, "random context prefixes the keys and values are averaged "
                             "over (besides the bare prompt); MEMIT's paper uses some, on the toy model 0 "
                             "memorised more at equal retention", min=0)
    prefix_words: int = option(8, "words of each context prefix", min=1)
    guidance: str = option("auto", "prompt layout (auto: the model's registered preset, "
                           "knowledge otherwise)")
    batch_size: int = option(32, "texts per forward pass of the covariance", min=1)
    seed: int = option(0, "seed of the prefixes and generic generations", min=0)
    device: str = option("auto", "device: auto, cpu or cuda")

    def validate(self) -> None:
        super().validate()
        for prompt in self.kl_prompts:
            if "{subject}" not in prompt:
                raise ConfigError(f"kl_prompts: each prompt needs {{subject}}, got {prompt!r} "
                                  "(flag --kl-prompts)")
        if len(set(self.layers)) != len(self.layers):
            raise ConfigError("layers: each layer may appear once (flag --layers)")
        check_guidance(self.guidance)
        check_device(self.device)
        if self.cov_source not in cov_sources():
            raise ConfigError(f"cov_source must be one of {', '.join(cov_sources())}, got "
                              f"{self.cov_source!r} (flag --cov-source)")

    def resolved_guidance(self) -> str:
        from mixsd.prompts import resolve_guidance_name

        return resolve_guidance_name(self.guidance, self.model)

    def resolved_cov_source(self) -> str:
        if self.cov_source != "auto":
            return self.cov_source
        return model_defaults(self.model).text_source or GENERATIONS


def cov_sources() -> list[str]:
    """Values of ``--cov-source``: auto, the registered text sources, generations."""
    return ["auto", *REGISTRIES.text_sources.names(), GENERATIONS]


def edit_config_with(path: str, *, source_flag: str = "--edit-config",
                     **values: Any) -> EditConfig:
    """EditConfig defaults < the YAML file ``path`` (none when empty) < ``values`` (what a
    composing stage decides, e.g. the comparison's model, guidance, device and seed)."""
    try:
        data = EditConfig.load_yaml(path) if path else {}
    except ConfigError as exc:
        raise ConfigError(f"{exc} (flag {source_flag})") from None
    data.update(values)
    return EditConfig.from_dict(data, source=path or "edit_config")
