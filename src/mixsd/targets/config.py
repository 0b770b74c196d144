"""Configuration of the target stage (``mixsd targets``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixsd.answers import check_extractor
from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError
from mixsd.methods import TARGET_METHODS
from mixsd.models import (
    check_device,
    check_dtype,
    hub_options,
    revision_option,
    trust_remote_code_option,
)
from mixsd.prompts import (
    chat_options,
    chat_template_kwargs_option,
    check_guidance,
    system_prompt_option,
)
from mixsd.targets.words import MIX_UNITS

METHODS = TARGET_METHODS  # mixsd.methods defines the word

# Fields that do not change a single target: they are left out of the resume fingerprint.
NON_SEMANTIC_FIELDS = ("batch_size", "device", "overwrite", "progress", "export")
# Fields added after targets were first made are declared ``later=True``: left out of the
# fingerprint at their default, so files made before them still resume.


@dataclass
class TargetsConfig(StageConfig):
    """How supervision targets are built (docs/method.md, "The method").

    ``mix_lambda`` is the probability of taking the NAIVE token at each step: 0 is pure
    expert (offline self-distillation), 1 is the base model's own greedy answer.
    """

    stage = "targets"

    model: str | None = option(None, "model id, local folder, or an alias (the toy world's: toy)")
    method: str = option(
        "mixsd",
        "mixsd: mix the naive and expert conditionals; sft: the reference answer y* itself",
        choices=METHODS,
    )
    mix_lambda: float = option(
        0.3, "probability of the NAIVE token at each step", flag="--lambda", min=0.0, max=1.0
    )
    mix_unit: str = option(
        "token",
        "where a new coin is drawn: token (the paper, every token), word (only where the next "
        "token starts a word), span (word, but the expert goes on while it copies y*)",
        choices=MIX_UNITS,
        later=True,
    )
    lambda_fallback: list[float] = option(
        default_factory=list,
        help="lower lambdas tried in turn, each with its own attempts, for a record that "
        "fails verification at --lambda (e.g. 0.3,0.15,0: every record gets its most-mixed "
        "verified target; the realised lambda is in meta.lambda); empty = the paper's rule: "
        "a record that never verifies is kept out of training",
        min=0.0, max=1.0, later=True,
    )
    temperature: float = option(0.0, "sampling temperature; 0 = greedy (argmax)", min=0.0)
    retry_temperature: float = option(
        0.0, "greedy at lambda 0 (or 1) has no coin: one attempt only, unless this is > 0, "
        "which samples that lambda's retries at this temperature (top-k); the first attempt "
        "stays greedy", min=0.0, later=True)
    top_k: int = option(64, "sample among the k most likely tokens (T > 0)", min=1)
    max_new_tokens: int = option(256, "most tokens generated per target", min=1)
    max_retries: int = option(
        10,
        "regenerations with fresh coins after a failed verification (0 = one attempt only)",
        min=0,
    )
    seed: int = option(0, "seed; a target depends only on (seed, record id, attempt)")
    batch_size: int = option(
        32, "records advanced together (each has a naive and an expert row)", min=1
    )
    guidance: str = option(
        "knowledge",
        "guidance preset of the expert prompt (knowledge, math, toy, or a registered name)",
    )
    chat_template_kwargs: dict[str, Any] = chat_template_kwargs_option()
    system_prompt: str | None = system_prompt_option()
    revision: str | None = revision_option()
    trust_remote_code: bool = trust_remote_code_option()
    extractor: str = option(
        "auto",
        "answer extractor used to verify a target: auto, boxed, number, contains, math (as "
        "mathematics, with math-verify) or regex:PATTERN",
    )
    verify_entities: bool = option(
        False,
        "also reject a target that drops a name of the record y* contains, or writes a name "
        "the record never gives",
        later=True,
    )
    verify_round_trip: bool = option(
        False,
        "also reject a target unless the base model, given it as the reference, answers the "
        "question with the key (costs one greedy generation per checked target)",
        later=True,
    )
    stop_tokens: list[str] = option(
        default_factory=list,
        help="extra stop tokens besides EOS and "
        "the chat template's end-of-turn tokens (comma-separated)",
    )
    device: str = option("auto", "device: auto, cpu, cuda, cuda:1, mps")
    dtype: str = option(
        "auto", "model dtype: auto (bf16 on GPUs that support it), float32, bfloat16, float16"
    )
    overwrite: bool = option(False, "start again instead of resuming an existing partial output")
    export: list[str] = option(
        default_factory=list, choices=("trl", "messages"), later=True,
        help="also write the verified targets for another trainer, once complete: trl "
        "(prompt/completion, conversational with a chat template; TRL's SFTTrainer) or "
        "messages (chat messages: axolotl, NeMo-RL), to OUT/export/FORMAT.jsonl")
    progress: bool = option(True, "show a tqdm progress bar")

    def validate(self) -> None:
        super().validate()
        check_extractor(self.extractor)
        check_guidance(self.guidance)
        check_device(self.device)
        check_dtype(self.dtype)
        chain = [self.mix_lambda, *self.lambda_fallback]
        if self.lambda_fallback and (self.method != "mixsd" or any(
                b >= a for a, b in zip(chain, chain[1:]))):
            raise ConfigError(
                "lambda_fallback: each lambda must be lower than the one before it, starting "
                f"below --lambda {self.mix_lambda:g} (got {', '.join(f'{x:g}' for x in chain)}; "
                "method mixsd only) (flag --lambda-fallback)")

    def hub_options(self) -> dict[str, Any]:
        """The loader keywords of a hub model (:func:`mixsd.models.hub_options`)."""
        return hub_options(self.revision, self.trust_remote_code)

    def chat_options(self) -> dict[str, Any]:
        """The chat settings given (:func:`mixsd.prompts.chat_options`), as renderer keywords."""
        return chat_options(self.chat_template_kwargs, self.system_prompt)

    @property
    def max_attempts(self) -> int:
        return 1 + self.max_retries

    def fingerprint_dict(self) -> dict:
        """The fields that decide the targets (what a resumed run must share); fields added
        later are left out at their default (:meth:`decisive_dict`)."""
        return {k: v for k, v in self.decisive_dict().items() if k not in NON_SEMANTIC_FIELDS}
