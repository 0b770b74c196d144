"""Fisher-weighted displacement: sum_i F_i (theta_i - theta0_i)^2 (docs/method.md, "Why it works").

Estimator. F is the diagonal EMPIRICAL Fisher of the base model theta0 on held-out capability
data: for examples n = 1..N (a suite's questions with their reference answers, rendered
exactly as training renders them, :meth:`PromptRenderer.training_example`),

    L_n(theta) = -log p_theta(y_n | x_n) = -sum_t log p_theta(y_n,t | x_n, y_n,<t)
    F_i        = (1/N) sum_n (dL_n / dtheta_i)^2        evaluated at theta0,

i.e. the mean of SQUARED PER-EXAMPLE gradients of the whole answer's NLL (not the square of
the mean gradient, and not the "true" Fisher, which would sample y from the model). Dropout
is off (eval mode). The displacement of a checkpoint theta is ``sum_i F_i (theta_i -
theta0_i)^2``, in total and per layer (parameters grouped by their transformer block index;
embeddings, lm_head and the rest have their own groups). Parameters are matched by name as
``named_parameters()`` lists them (tied weights count once).

Checkpoints may be full model folders or LoRA adapter folders (``adapter_config.json``): an
adapter is loaded on the base model with peft and merged before comparing weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mixsd.errors import MixsdError
from mixsd.prompts import PromptRenderer

_BLOCK = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")


def layer_group(name: str) -> str:
    """The displacement group of a parameter: ``layer.K``, ``embeddings``, ``lm_head``, ``other``."""
    match = _BLOCK.search(name)
    if match:
        return f"layer.{int(match.group(1))}"
    if any(k in name for k in ("embed", "wte", "wpe")):
        return "embeddings"
    if "lm_head" in name:
        return "lm_head"
    return "other"


def _group_order(group: str) -> tuple[int, int, str]:
    if group.startswith("layer."):
        return (1, int(group.split(".")[1]), group)
    return ({"embeddings": 0, "lm_head": 2}.get(group, 3), 0, group)


def suite_examples(suites: Mapping[str, Any], tokenizer: Any, *,
                   max_examples: int | None = None) -> list[tuple[list[int], list[int]]]:
    """Training-rendered ``(prompt ids, answer ids)`` of every suite's questions and reference
    answers (each suite with its own guidance layout); the first ``max_examples`` are kept."""
    examples, skipped = [], []
    for name, suite in suites.items():
        pairs = getattr(suite, "reference_pairs", None)
        if pairs is None:  # e.g. the instruction probe: format checks, no reference answers
            skipped.append(name)
            continue
        renderer = PromptRenderer(tokenizer, getattr(suite, "guidance", "knowledge"),
                                  **(getattr(suite, "chat", None) or {}))
        examples.extend(renderer.training_example(p, a) for p, a in pairs())
    if max_examples is not None:
        examples = examples[:max_examples]
    if not examples:
        why = f" (suites without reference answers: {', '.join(skipped)})" if skipped else ""
        raise MixsdError("the Fisher needs at least one held-out example with a reference "
                         f"answer: a records, general, math, mcq or toy suite{why}")
    return examples


def example_nll(model: Any, prompt_ids: Sequence[int], target_ids: Sequence[int]) -> Any:
    """``-log p(target | prompt)`` summed over target tokens, as a differentiable scalar."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(target_ids)], device=device)
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    target = torch.tensor(list(target_ids), device=device)
    return -torch.log_softmax(logits, dim=-1).gather(1, target[:, None]).sum()


def empirical_fisher(model: Any, examples: Sequence[tuple[Sequence[int], Sequence[int]]]
                     ) -> dict[str, Any]:
    """Diagonal empirical Fisher ``{param name: tensor}`` (float32, CPU); see module docstring."""
    import torch

    was_training = model.training
    model.eval()
    params = [(n, p) for n, p in model.named_parameters()]
    grads_on = [p.requires_grad for _, p in params]
    for _, p in params:
        p.requires_grad_(True)
    # Accumulate beside the parameters (no per-example device copies); CPU at the end.
    fisher = {n: torch.zeros(p.shape, dtype=torch.float32, device=p.device) for n, p in params}
    try:
        for prompt_ids, target_ids in tqdm(examples, desc="fisher", leave=False,
                                           disable=len(examples) < 64):
            loss = example_nll(model, prompt_ids, target_ids)
            grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
            for (name, _), g in zip(params, grads):
                if g is not None:
                    fisher[name] += g.detach().float() ** 2
    finally:
        for (_, p), on in zip(params, grads_on):
            p.requires_grad_(on)
        model.train(was_training)
    return {n: (f / len(examples)).cpu() for n, f in fisher.items()}


def parameters_of(model: Any) -> dict[str, Any]:
    """A detached float32 CPU copy of ``named_parameters()`` (e.g. theta0 of the base model)."""
    import torch

    return {n: p.detach().to("cpu", torch.float32).clone() for n, p in model.named_parameters()}


def fisher_displacement(fisher: Mapping[str, Any], theta0: Mapping[str, Any],
                        theta: Mapping[str, Any] | Any) -> dict[str, Any]:
    """``{"total": sum_i F_i (theta_i - theta0_i)^2, "per_layer": {group: value}}``.

    ``theta`` is a model or a ``{name: tensor}`` mapping with the base model's names.
    """
    import torch

    if not isinstance(theta, Mapping):
        theta = dict(theta.named_parameters())
    missing = [n for n in fisher if n not in theta]
    if missing:
        raise MixsdError(f"the checkpoint lacks {len(missing)} base parameters (e.g. "
                         f"{missing[0]!r}); is it the same architecture?")
    groups: dict[str, float] = {}
    for name, f in fisher.items():
        delta = theta[name].detach().to("cpu", torch.float32) - theta0[name]
        if delta.shape != f.shape:
            raise MixsdError(f"parameter {name!r} has shape {tuple(delta.shape)} in the "
                             f"checkpoint but {tuple(f.shape)} in the base model")
        group = layer_group(name)
        groups[group] = groups.get(group, 0.0) + float((f * delta.pow(2)).sum())
    per_layer = {g: groups[g] for g in sorted(groups, key=_group_order)}
    return {"total": sum(per_layer.values()), "per_layer": per_layer}


def is_checkpoint(path: Path) -> bool:
    """A folder with weights (a stub whose weights ``--keep`` removed is not one)."""
    from mixsd.training.keep import is_pruned

    has_model = (path / "config.json").exists() or (path / "adapter_config.json").exists()
    return has_model and not is_pruned(path)


def checkpoint_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Each path is a checkpoint folder, or a run folder whose ``epoch-N/`` are expanded."""
    found = []
    for raw in paths:
        path = Path(raw)
        if is_checkpoint(path):
            found.append(path)
            continue
        epochs = sorted((p for p in path.glob("epoch-*") if p.is_dir() and is_checkpoint(p)),
                        key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit()
                        else 10**9)
        if not epochs:
            raise MixsdError(f"{path}: neither a checkpoint (config.json or adapter_config.json) "
                             "nor a run folder with epoch-N/ checkpoints")
        found.extend(epochs)
    return found


def load_checkpoint_parameters(path: str | Path, base_model_path: str | None = None
                               ) -> dict[str, Any]:
    """Parameters of a checkpoint in float32 on the CPU; a LoRA adapter is merged into its base
    model (``base_model_path``, default the one the run recorded) first."""
    from mixsd.training.checkpoints import load_checkpoint_model

    return parameters_of(load_checkpoint_model(path, base_model=base_model_path, device="cpu",
                                               dtype="float32", merge=True))


class FisherReference:
    """The base model's diagonal Fisher and weights, computed once when first needed; the
    displacement of each checkpoint of a comparison from them (:func:`fisher_displacement`).

    ``suites`` are the held-out suites the Fisher is estimated on (``max_examples`` of their
    examples; 0, or no suites, turns the measurement off: :meth:`displacement` returns None)."""

    def __init__(self, model: Any, tokenizer: Any, suites: Mapping[str, Any], *,
                 max_examples: int, base_model_path: str | None = None):
        self.model, self.tokenizer, self.suites = model, tokenizer, suites
        self.max_examples, self.base_model_path = max_examples, base_model_path
        self._fisher: dict[str, Any] | None = None
        self._theta0: dict[str, Any] | None = None

    def compute(self) -> bool:
        """Compute the Fisher and keep the base weights (on the CPU) now, once; False when
        the measurement is off. After it the base model itself is no longer needed."""
        if self.max_examples == 0 or not self.suites:
            return False
        if self._fisher is None:
            examples = suite_examples(self.suites, self.tokenizer, max_examples=self.max_examples)
            self._fisher = empirical_fisher(self.model, examples)
            self._theta0 = parameters_of(self.model)
        return True

    def displacement(self, checkpoint: str | Path) -> dict[str, Any] | None:
        """The Fisher displacement of ``checkpoint`` (a LoRA adapter is merged into
        ``base_model_path`` first)."""
        if not self.compute():
            return None
        theta = load_checkpoint_parameters(checkpoint, self.base_model_path)
        return fisher_displacement(self._fisher, self._theta0, theta)
