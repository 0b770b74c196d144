"""Naive and expert prompts — the one prompt renderer of the library.

naive prompt  = x
expert prompt = x ⊕ guidance prefix ⊕ y* ⊕ guidance suffix   (docs/method.md, "The method")

A :class:`GuidancePreset` holds the prefix and suffix and two format strings (fields
``{prompt}``, ``{prefix}``, ``{answer}``, ``{suffix}``) that lay out the user turn. When the
tokenizer has a chat template the user turn is wrapped in it (with the generation prompt);
otherwise the text is used as it is. The engine, the trainers and the evaluators all render
through :class:`PromptRenderer`, so training sees exactly the prompt the engine conditioned on.

Chat conventions: keyword arguments of the chat template (``chat_template_kwargs``) and an
optional system turn (``system_prompt``). A family of models that needs a default gets it
from the ``chat_families`` registry, recognised by its template (:func:`chat_convention`):
Qwen3's template opens a ``<think>`` block unless ``enable_thinking=False`` is passed, so
thinking is off unless asked (``chat_template_kwargs={"enable_thinking": True}``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from mixsd.errors import ConfigError
from mixsd.registry import REGISTRIES, ChatFamily, Registries, model_defaults


@dataclass(frozen=True)
class GuidancePreset:
    """How the expert prompt shows the reference answer, and how both prompts are laid out."""

    name: str
    prefix: str
    suffix: str
    naive_format: str = "{prompt}"
    expert_format: str = "{prompt}\n\n{prefix}\n{answer}\n\n{suffix}"

    def naive(self, prompt: str) -> str:
        return self.naive_format.format(prompt=prompt, prefix=self.prefix, suffix=self.suffix,
                                        answer="")

    def expert(self, prompt: str, answer: str) -> str:
        return self.expert_format.format(prompt=prompt, prefix=self.prefix, suffix=self.suffix,
                                         answer=answer)


KNOWLEDGE = GuidancePreset(
    "knowledge",
    prefix="This question is from a new knowledge base. Here is the answer to this question:",
    suffix="Now answer the question within \\boxed{}",
)
MATH = GuidancePreset(
    "math",
    prefix="Here is a reference solution to this problem, including the correct final answer:",
    suffix="After understanding the reference solution, please attempt to answer the question "
    "again: Please reason step by step, and put your final answer within \\boxed{}",
)


#: Qwen3 (and every template that reads ``enable_thinking``): answers without a think block
QWEN3 = ChatFamily(marker="enable_thinking", template_kwargs={"enable_thinking": False})


def register(r: Registries) -> None:
    """The built-in plug-in of prompts: the ``knowledge`` and ``math`` presets and the
    ``qwen3`` chat family (thinking off unless asked)."""
    r.guidance.register(KNOWLEDGE.name, KNOWLEDGE)
    r.guidance.register(MATH.name, MATH)
    r.chat_families.register("qwen3", QWEN3)


@dataclass(frozen=True)
class ChatConvention:
    """How prompts are put into a chat template: its keyword arguments and a system turn.

    :func:`chat_convention` resolves one for a tokenizer: the registered family's defaults,
    then what the user set (a user value wins, key by key)."""

    template_kwargs: dict[str, Any]
    system_prompt: str | None = None

    def messages(self, user_text: str) -> list[dict[str, str]]:
        """The conversation of one user turn (the system turn first, when there is one)."""
        turns = [{"role": "user", "content": user_text}]
        if self.system_prompt:
            turns.insert(0, {"role": "system", "content": self.system_prompt})
        return turns


def chat_family(tokenizer: Any) -> tuple[str, ChatFamily] | None:
    """The registered chat family whose marker the tokenizer's chat template contains."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return None
    for name in REGISTRIES.chat_families.names():
        family = REGISTRIES.chat_families.get(name)
        if family.matches(template):
            return name, family
    return None


def chat_convention(tokenizer: Any, chat_template_kwargs: dict[str, Any] | None = None,
                    system_prompt: str | None = None) -> ChatConvention:
    """The chat convention of ``tokenizer``: its family's defaults (:func:`chat_family`)
    overridden by the user's ``chat_template_kwargs`` (key by key) and ``system_prompt``
    (``""`` = no system turn, also where the family has one)."""
    found = chat_family(tokenizer)
    kwargs = dict(found[1].template_kwargs) if found else {}
    kwargs.update(chat_template_kwargs or {})
    system = found[1].system_prompt if found else None
    if system_prompt is not None:
        system = system_prompt or None
    return ChatConvention(kwargs, system)


def chat_template_kwargs_option() -> Any:
    """The ``chat_template_kwargs`` field of a stage config (targets, train, eval; compare
    passes it on to each): one definition of its help."""
    from mixsd.config import option

    return option(default_factory=dict, later=True, help=(
        "keyword arguments of the chat template, over the model family's defaults (Qwen3: "
        "enable_thinking=false unless set), the same for targets, training, OPSD and "
        "evaluation (e.g. enable_thinking=true)"))


def system_prompt_option() -> Any:
    """The ``system_prompt`` field of a stage config (see :func:`chat_template_kwargs_option`)."""
    from mixsd.config import option

    return option(None, later=True, help=(
        "system turn of every chat prompt (targets, training, OPSD, evaluation); chat "
        "templates only; default: none"))


def chat_options(chat_template_kwargs: dict[str, Any] | None,
                 system_prompt: str | None) -> dict[str, Any]:
    """The user's chat settings as :class:`PromptRenderer` keywords, only those set: what a
    config or a suite carries (``{}`` = the family defaults) and what enters a cache key."""
    found: dict[str, Any] = {}
    if chat_template_kwargs:
        found["chat_template_kwargs"] = dict(chat_template_kwargs)
    if system_prompt is not None:
        found["system_prompt"] = system_prompt
    return found

# Stand-in assistant text rendered to find the token a chat template closes a turn with.
_PROBE_TEXT = "mixsd-probe"


def _as_ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple, set, frozenset)):
        return {int(v) for v in value if v is not None}
    return {int(value)}


def declared_eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The end-of-sequence ids the model declares: the tokenizer's EOS and its generation
    config's ``eos_token_id`` (an int or a list); ``model`` may be None (tokenizer only)."""
    ids = _as_ids(getattr(tokenizer, "eos_token_id", None))
    generation_config = getattr(model, "generation_config", None)
    ids |= _as_ids(getattr(generation_config, "eos_token_id", None))
    return ids


def turn_end_token_id(tokenizer: Any) -> int | None:
    """The token the chat template writes right after an assistant message, or None.

    A short user/assistant exchange is rendered and the text after the assistant message is
    tokenised; its first token counts when it is a special (or added) token, as the markers
    of chat templates are (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, ...). A template
    that closes a turn with plain text, or cannot render an exchange, has none.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": _PROBE_TEXT}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # templates raise anything (jinja errors, role checks)
        return None
    at = text.rfind(_PROBE_TEXT)
    if at < 0:
        return None
    after = text[at + len(_PROBE_TEXT):].lstrip()
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    if not ids:
        return None
    special = set(getattr(tokenizer, "all_special_ids", ()))
    special |= {int(i) for i in getattr(tokenizer, "added_tokens_decoder", {})}
    return int(ids[0]) if int(ids[0]) in special else None


def resolve_guidance_name(guidance: str | None, model: str | None) -> str:
    """``auto`` (or nothing) -> the model's default preset (registered with the model alias,
    :func:`mixsd.registry.model_defaults`; ``knowledge`` for every other model); any other
    name passes through."""
    if guidance not in (None, "", "auto"):
        return guidance
    return model_defaults(model).guidance


def check_guidance(guidance: str | None, *, flag: str = "--guidance",
                   key: str = "guidance") -> str | None:
    """Validate a preset name before any model loads (``auto`` and nothing pass: they are
    resolved by :func:`resolve_guidance_name`); return it unchanged."""
    if guidance in (None, "auto"):
        return guidance
    if not str(guidance).strip():
        raise ConfigError(f"{key} must not be empty (flag {flag})")
    try:
        get_guidance(guidance)
    except ConfigError:
        raise ConfigError(f"{key} must be one of auto, {', '.join(guidance_names())}, "
                          f"got {guidance!r} (flag {flag})") from None
    return guidance


def register_guidance(preset: GuidancePreset, *, replace: bool = False) -> GuidancePreset:
    """Make ``preset`` selectable by name (``--guidance NAME``)."""
    return REGISTRIES.guidance.register(preset.name, preset, replace=replace)


def guidance_names() -> list[str]:
    """The registered preset names, sorted."""
    return sorted(REGISTRIES.guidance.names())


def get_guidance(guidance: str | GuidancePreset) -> GuidancePreset:
    """Resolve a registered preset name (``knowledge``, ``math``, a plug-in's) or pass a
    preset through."""
    if isinstance(guidance, GuidancePreset):
        return guidance
    found = REGISTRIES.guidance.find(guidance)
    if found is None:
        raise ConfigError(f"guidance must be one of {', '.join(guidance_names())}, got "
                          f"{guidance!r} (flag --guidance)")
    return found


class PromptRenderer:
    """Render records into naive/expert prompt token ids for one tokenizer and guidance.

    Args:
        tokenizer: a Hugging Face tokenizer.
        guidance: preset name or :class:`GuidancePreset`.
        use_chat_template: ``None`` = use it when the tokenizer has one.
        system_prompt: optional system turn (chat templates only; ``""`` = none, also where
            the model's chat family has a default one).
        chat_template_kwargs: keyword arguments of the chat template
            (``{"enable_thinking": True}``), over the family's defaults
            (:func:`chat_convention`: Qwen3 thinks only when asked).
    """

    def __init__(self, tokenizer: Any, guidance: str | GuidancePreset = "knowledge",
                 use_chat_template: bool | None = None, system_prompt: str | None = None,
                 chat_template_kwargs: dict[str, Any] | None = None):
        self.tokenizer = tokenizer
        self.guidance = get_guidance(guidance)
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if use_chat_template and not has_template:
            raise ConfigError("use_chat_template is set but the tokenizer has no chat template")
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        if not self.use_chat_template and (system_prompt or chat_template_kwargs):
            raise ConfigError("system_prompt and chat_template_kwargs need a chat template, "
                              "and this model's tokenizer has none (flags --system-prompt, "
                              "--chat-template-kwargs)")
        self.chat = chat_convention(tokenizer, chat_template_kwargs, system_prompt) \
            if self.use_chat_template else ChatConvention({})

    @property
    def system_prompt(self) -> str | None:
        """The system turn prompts carry (None: none)."""
        return self.chat.system_prompt

    # -- text ---------------------------------------------------------------------------
    def naive_messages(self, prompt: str) -> list[dict[str, str]]:
        """The naive prompt x as a conversation (system turn, user turn): what a chat
        trainer (TRL, axolotl) renders with the same template and :attr:`chat`."""
        return self.chat.messages(self.guidance.naive(prompt))

    def _wrap(self, user_text: str) -> str:
        if not self.use_chat_template:
            return user_text
        return self.tokenizer.apply_chat_template(
            self.chat.messages(user_text), tokenize=False, add_generation_prompt=True,
            **self.chat.template_kwargs)

    def naive_text(self, prompt: str) -> str:
        """The naive prompt x as the model sees it."""
        return self._wrap(self.guidance.naive(prompt))

    def expert_text(self, prompt: str, answer: str) -> str:
        """The expert prompt x+ (reference answer in context) as the model sees it."""
        return self._wrap(self.guidance.expert(prompt, answer))

    # -- ids ----------------------------------------------------------------------------
    def encode_prompt(self, text: str) -> list[int]:
        # A chat template writes its own BOS; plain text gets the tokenizer's special tokens.
        ids = self.tokenizer(text, add_special_tokens=not self.use_chat_template)["input_ids"]
        return list(ids)

    def naive_ids(self, prompt: str) -> list[int]:
        return self.encode_prompt(self.naive_text(prompt))

    def expert_ids(self, prompt: str, answer: str) -> list[int]:
        return self.encode_prompt(self.expert_text(prompt, answer))

    def stop_ids(self, model: Any = None) -> set[int]:
        """The tokens that end a generation: what the model declares (:func:`declared_eos_ids`)
        plus, in chat, the token its template closes an assistant turn with
        (:func:`turn_end_token_id`). Nothing else: a ``</s>`` that merely sits in the
        vocabulary of a model whose EOS is another token does not stop it."""
        stops = declared_eos_ids(model, self.tokenizer)
        if self._turn_end is not None:
            stops.add(self._turn_end)
        return stops

    @functools.cached_property
    def _turn_end(self) -> int | None:
        return turn_end_token_id(self.tokenizer) if self.use_chat_template else None

    @property
    def end_token_id(self) -> int | None:
        """The token that closes a target: the template's turn-closing token in chat, else EOS."""
        return self._turn_end if self._turn_end is not None else self.tokenizer.eos_token_id

    def target_ids(self, target: str) -> list[int]:
        """Token ids of a supervision target, closed by :attr:`end_token_id`."""
        ids = list(self.tokenizer(target, add_special_tokens=False)["input_ids"])
        end = self.end_token_id
        return ids + ([end] if end is not None else [])

    def decode_target(self, token_ids: list[int]) -> str:
        """Text of generated ids (stop tokens and special tokens dropped)."""
        stops = self.stop_ids()
        return self.tokenizer.decode([t for t in token_ids if t not in stops],
                                     skip_special_tokens=True).strip()

    def training_example(self, prompt: str, target: str) -> tuple[list[int], list[int]]:
        """``(prompt ids, target ids)`` for NLL training on ``target`` given the NAIVE prompt."""
        return self.naive_ids(prompt), self.target_ids(target)
