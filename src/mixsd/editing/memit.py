"""MEMIT: mass-editing facts into the MLP down-projections of a range of layers.

From the published method (Meng et al., "Mass-Editing Memory in a Transformer", 2022), in
our words:

1. Key of fact i at layer l: the down-projection's input at the subject's last token of the
   naive prompt, averaged over the bare prompt and a few context prefixes.
2. Target value: at the LAST edited layer L, a vector delta_i added to the residual stream at
   that token is optimised so the model emits the new object after the prompt (NLL over
   every context), with a KL term keeping the subject's other predictions (``kl_prompts``),
   a decay on |delta| and a norm clamp. z_i = h_i^L + delta_i.
3. Spread: for each edited layer l in ascending order, with the model as edited so far,
   the residual r_i = (z_i - h_i^L) / (layers left) is written with the closed form
   dW = R K^T (lambda_c C + K K^T)^-1 (K, R: keys and residuals as columns; C: E[k k^T]
   over generic text), the minimiser of |dW K - R|^2 + lambda_c tr(dW C dW^T).

Everything is deterministic in the config's seed (no batch-order dependence: each fact's
value is optimised on its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from mixsd.editing.config import EditConfig
from mixsd.editing.locate import (
    add_at_positions,
    capture_inputs,
    capture_output,
    decoder_layers,
    default_layers,
    down_proj,
    subject_last_token,
)
from mixsd.errors import MixsdError
from mixsd.generation import pad_token_id, right_pad
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord
from mixsd.training.divergences import kl as kl_divergence


@dataclass
class FactRequest:
    """One fact as token ids: each context's prompt ids and subject position, the target
    ids to emit after the prompt, and the KL prompts (ids, subject position)."""

    record_id: str
    contexts: list[tuple[list[int], int]]
    target_ids: list[int]
    kl: list[tuple[list[int], int]]


def check_subjects(records: Sequence[KnowledgeRecord]) -> None:
    """Every record needs a subject; the first without one is named."""
    for rec in records:
        if not (rec.subject or "").strip():
            raise MixsdError(f"record {rec.id!r} has no subject: MEMIT needs the entity whose "
                             "fact is edited (field 'subject'); kgfact, mquake and the toy "
                             "corpus carry one")


def target_ids(renderer: PromptRenderer, record: KnowledgeRecord, target: str) -> list[int]:
    """``answer_key``: the object's tokens (MEMIT's classic target); ``answer``: the whole
    reference answer y* closed by the end token, as SFT trains it."""
    if target == "answer":
        return renderer.target_ids(record.answer)
    ids = list(renderer.tokenizer(record.answer_key, add_special_tokens=False)["input_ids"])
    if not ids:
        raise MixsdError(f"record {record.id!r}: its answer_key has no tokens")
    return ids


def build_requests(records: Sequence[KnowledgeRecord], renderer: PromptRenderer,
                   config: EditConfig, prefixes: Sequence[str]) -> list[FactRequest]:
    check_subjects(records)
    tok = renderer.tokenizer
    special = not renderer.use_chat_template
    out = []
    for rec in records:
        texts = [renderer.naive_text(rec.prompt)] + [
            renderer.naive_text(f"{p} {rec.prompt}") for p in prefixes]
        contexts = [subject_last_token(tok, t, rec.subject, add_special_tokens=special,
                                       record_id=rec.id) for t in texts]
        kl = [subject_last_token(tok, p.format(subject=rec.subject), rec.subject,
                                 add_special_tokens=True, record_id=rec.id)
              for p in config.kl_prompts]
        out.append(FactRequest(rec.id, contexts, target_ids(renderer, rec, config.target), kl))
    return out


def _pad_id(tokenizer: Any) -> int:
    return pad_token_id(tokenizer)


def context_activations(model: Any, tokenizer: Any, requests: Sequence[FactRequest],
                        key_layer: int, out_layer: int, batch_size: int = 32
                        ) -> tuple[Any, Any]:
    """``(keys [n, d_in], h [n, d])``: the down-projection input at ``key_layer`` and the
    residual output of ``out_layer``, at the subject's last token, mean over contexts."""
    import torch

    rows = [(i, ids, pos) for i, r in enumerate(requests) for ids, pos in r.contexts]
    device = next(model.parameters()).device
    layer_module = decoder_layers(model)[out_layer]
    keys = [[] for _ in requests]
    outs = [[] for _ in requests]
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids, mask = right_pad([c[1] for c in chunk], _pad_id(tokenizer), device)
        with torch.no_grad(), capture_inputs({key_layer: down_proj(model, key_layer)}) as kin, \
                capture_output(layer_module) as hout:
            model(input_ids=ids, attention_mask=mask)
        for row, (i, _, pos) in enumerate(chunk):
            keys[i].append(kin[key_layer][row, pos].double())
            outs[i].append(hout["out"][row, pos].double())
    return (torch.stack([torch.stack(k).mean(0) for k in keys]).cpu(),
            torch.stack([torch.stack(o).mean(0) for o in outs]).cpu())


def _value_batch(request: FactRequest, tokenizer: Any, device: Any) -> dict[str, Any]:
    """Context rows (prompt + teacher-forced target) then KL rows, with what each reads."""
    target = request.target_ids
    rows = [ids + target for ids, _ in request.contexts] + [ids for ids, _ in request.kl]
    ids, mask = right_pad(rows, _pad_id(tokenizer), device)
    predict = [(r, len(c) - 1 + t, tok) for r, (c, _) in enumerate(request.contexts)
               for t, tok in enumerate(target)]
    n_ctx = len(request.contexts)
    return {"ids": ids, "mask": mask,
            "positions": [p for _, p in request.contexts] + [p for _, p in request.kl],
            "predict": predict, "n_ctx": n_ctx, "n_target": len(target),
            "kl_rows": [(n_ctx + k, len(ids_k) - 1) for k, (ids_k, _) in enumerate(request.kl)]}


def optimise_value(model: Any, tokenizer: Any, request: FactRequest, layer: int, h: Any,
                   config: EditConfig) -> tuple[Any, dict[str, float]]:
    """delta for one fact at the output of ``layer`` (see the module docstring, step 2)."""
    import torch

    device = next(model.parameters()).device
    batch = _value_batch(request, tokenizer, device)
    rows = list(range(batch["ids"].shape[0]))
    module = decoder_layers(model)[layer]
    r_idx, p_idx, t_idx = (torch.tensor(x, device=device) for x in zip(*batch["predict"]))
    kl_r, kl_p = (torch.tensor(x, device=device) for x in zip(*batch["kl_rows"])) \
        if batch["kl_rows"] else (None, None)
    h_norm = float(h.norm())
    delta = torch.zeros(h.shape[-1], device=device, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=config.v_lr)
    base_kl = None
    stats: dict[str, float] = {}
    for step in range(config.v_steps + 1):
        with torch.enable_grad(), add_at_positions(module, delta, rows, batch["positions"]):
            logits = model(input_ids=batch["ids"], attention_mask=batch["mask"]).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            nll = -logp[r_idx, p_idx, t_idx].sum() / batch["n_ctx"] / batch["n_target"]
            kl = torch.zeros((), device=device)
            if kl_r is not None:
                now = logp[kl_r, kl_p]
                if base_kl is None:
                    base_kl = now.detach()
                kl = kl_divergence(base_kl, now).mean()
            decay = config.v_weight_decay * delta.pow(2).sum() / max(h_norm, 1e-12) ** 2
            loss = nll + config.kl_weight * kl + decay
        if step == 0:
            stats["nll_before"] = float(nll.detach())
        stats.update(nll_value=float(nll.detach()), kl=float(kl.detach()))
        if step == config.v_steps:
            break  # the last pass only measures
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            limit = config.clamp_norm * h_norm
            if float(delta.norm()) > limit > 0:
                delta.mul_(limit / float(delta.norm()))
    delta = delta.detach()
    stats["delta_ratio"] = float(delta.norm()) / max(h_norm, 1e-12)
    return delta.double().cpu(), stats


def closed_form_update(keys: Any, residuals: Any, covariance: Any, cov_weight: float) -> Any:
    """dW [d_out, d_in] = R K^T (cov_weight C + K K^T)^-1 with the keys [n, d_in] and
    residuals [n, d_out] as rows (so K = keys^T): the minimiser of
    |dW K - R|^2 + cov_weight tr(dW C dW^T)."""
    import torch

    keys, residuals = keys.double(), residuals.double()
    system = cov_weight * covariance.double() + keys.T @ keys
    rhs = keys.T @ residuals
    if cov_weight > 0:
        return torch.linalg.solve(system, rhs).T
    return (torch.linalg.pinv(system) @ rhs).T


def target_scores(model: Any, requests: Sequence[FactRequest]) -> list[dict[str, float]]:
    """Each request's target read after its bare prompt (context 0), teacher-forced: mean NLL
    (``nll``), the share of target tokens that are the argmax (``token_accuracy``) and
    whether all are (``efficacy``: the edited model writes the object right after the edit
    prompt, MEMIT's own measure of an edit on a prompt without a previous object)."""
    import torch

    device = next(model.parameters()).device
    out = []
    for req in requests:
        ids, _ = req.contexts[0]
        row = torch.tensor([ids + req.target_ids], device=device)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=row).logits[0].float(), dim=-1)
        at = [len(ids) - 1 + t for t in range(len(req.target_ids))]
        picks = [float(logp[i, tok]) for i, tok in zip(at, req.target_ids)]
        hits = [int(logp[i].argmax()) == tok for i, tok in zip(at, req.target_ids)]
        out.append({"nll": -sum(picks) / len(picks), "token_accuracy": sum(hits) / len(hits),
                    "efficacy": float(all(hits))})
    return out


def target_nll(model: Any, tokenizer: Any, requests: Sequence[FactRequest]) -> list[float]:
    """Mean NLL of each request's target after its bare prompt (context 0)."""
    return [s["nll"] for s in target_scores(model, requests)]


def edit_requests(tokenizer: Any, records: Sequence[KnowledgeRecord],
                  config: EditConfig) -> list[FactRequest]:
    """The requests of ``records`` on their bare edit prompts (no context prefixes)."""
    return build_requests(records, PromptRenderer(tokenizer, config.resolved_guidance()),
                          config, [])


def apply_memit(model: Any, tokenizer: Any, records: Sequence[KnowledgeRecord],
                config: EditConfig, *, prefixes: Sequence[str], covariances: dict[int, Any],
                progress: bool = False) -> dict[str, Any]:
    """Edit ``model`` in place with every record at once; return per-fact and per-layer
    statistics. ``covariances`` holds C for every edited layer."""
    import torch

    layers = sorted(config.layers or default_layers(len(decoder_layers(model))))
    for layer in layers:
        down_proj(model, layer)  # a clear error before any work
        if layer not in covariances:
            raise MixsdError(f"no key covariance for layer {layer}")
    renderer = PromptRenderer(tokenizer, config.resolved_guidance())
    requests = build_requests(records, renderer, config, prefixes)
    before = target_scores(model, requests)
    last = layers[-1]
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        _, h = context_activations(model, tokenizer, requests, last, last, config.batch_size)
        torch.manual_seed(config.seed)
        deltas, facts = [], []
        for req, h_i in tqdm(list(zip(requests, h)), desc="memit values", leave=False,
                             disable=not progress):
            delta, stats = optimise_value(model, tokenizer, req, last, h_i, config)
            deltas.append(delta)
            facts.append({"id": req.record_id, **stats})
        z = h + torch.stack(deltas)
        per_layer = {}
        for i, layer in enumerate(layers):
            keys, current = context_activations(model, tokenizer, requests, layer, last,
                                                config.batch_size)
            residuals = (z - current) / (len(layers) - i)
            weight = down_proj(model, layer).weight
            update = closed_form_update(keys, residuals, covariances[layer], config.cov_weight)
            with torch.no_grad():
                weight.add_(update.to(weight.device, weight.dtype))
            per_layer[str(layer)] = {"update_norm": float(update.norm()),
                                     "relative": float(update.norm() / weight.double().norm())}
    finally:
        for p in params:
            p.requires_grad_(True)
    for fact, pre, post in zip(facts, before, target_scores(model, requests), strict=True):
        fact["nll_after"] = post["nll"]
        fact["efficacy_before"], fact["efficacy_after"] = pre["efficacy"], post["efficacy"]
        fact["token_accuracy_after"] = post["token_accuracy"]
    return {"layers": layers, "per_layer": per_layer, "facts": facts,
            "efficacy": sum(f["efficacy_after"] for f in facts) / max(1, len(facts)),
            "efficacy_before": sum(f["efficacy_before"] for f in facts) / max(1, len(facts))}
