"""Deterministic CPU pretraining of the toy base model (a small LlamaForCausalLM).

A plain loop in the nanoGPT spirit: documents from :meth:`World.documents` are wrapped in
``<s> ... </s>``, packed into rows of ``block_size + 1`` tokens and trained with next-token
NLL, AdamW, linear warm-up then cosine decay, gradient clipping. Seeds, deterministic
algorithms and a fixed thread count make the same config produce the same bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mixsd.toyworld.tokenizer import build_tokenizer, encode_words
from mixsd.toyworld.world import World, WorldConfig


@dataclass(frozen=True)
class ModelConfig:
    """Size of the toy Llama."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    max_positions: int = 256
    # Untied: with tied embeddings the attribute values (unpredictable wherever a fact is first
    # stated) collapse to one vector, and copying a value from the context never emerges.
    tie_embeddings: bool = False
    # Input embeddings start at N(0, embed_std^2) instead of HF's N(0, 0.02^2): from a tiny
    # start, the shared "a value comes next to a full stop" update swamps every value's
    # identity within a few hundred AdamW steps, and there is nothing left to copy.
    embed_std: float = 0.25
    # Output rows start at N(0, head_std^2): the shift that gives a value's type its prior
    # must stay small beside each value's own direction, or the rows of a type collapse
    # into one and the model cannot say WHICH city it read.
    head_std: float = 0.25

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PretrainConfig:
    """The toy model's pretraining run (not :class:`mixsd.training.TrainConfig`, which
    configures fine-tuning)."""

    seed: int = 0
    steps: int = 3600
    batch_size: int = 32
    block_size: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.01
    clip: float = 1.0
    # 1 and 2 threads give the same bytes (not part of the cache hash); 2 is ~1.45x faster
    # on an idle 2-core machine, 1 is faster when the cores are busy (`toy build --threads`).
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(vocab_size: int, tokenizer: Any, config: ModelConfig, seed: int) -> Any:
    """A freshly initialised ``LlamaForCausalLM`` (seeded)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=config.hidden,
                      intermediate_size=config.ffn, num_hidden_layers=config.layers,
                      num_attention_heads=config.heads, num_key_value_heads=config.heads,
                      max_position_embeddings=config.max_positions,
                      tie_word_embeddings=config.tie_embeddings,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, config.embed_std)
        if not config.tie_embeddings and config.head_std:
            model.get_output_embeddings().weight.normal_(0.0, config.head_std)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


class PackedBatches:
    """Rows of ``block_size + 1`` tokens cut from the concatenated document stream."""

    def __init__(self, world: World, vocab: dict[str, int], seed: int, batch_size: int,
                 block_size: int):
        self.docs = world.documents(seed)
        self.vocab, self.batch_size, self.width = vocab, batch_size, block_size + 1
        self.bos, self.eos = vocab["<s>"], vocab["</s>"]
        self.buffer: list[int] = []

    def next(self) -> Any:
        import torch

        need = self.batch_size * self.width
        while len(self.buffer) < need:
            self.buffer += [self.bos, *encode_words(self.vocab, next(self.docs)), self.eos]
        chunk, self.buffer = self.buffer[:need], self.buffer[need:]
        return torch.tensor(chunk, dtype=torch.long).view(self.batch_size, self.width)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    ratio = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * ratio


def pretrain(out_dir: str | Path, world_config: WorldConfig, model_config: ModelConfig,
             train_config: PretrainConfig, *, progress: bool = True,
             callback: Callable[[int, Any, Any], None] | None = None) -> dict[str, Any]:
    """Pretrain the toy model and save it (model + tokenizer) into ``out_dir``.

    ``callback(step, model, tokenizer)``, when given, runs after every 100th step (for probing
    how capabilities emerge; it must not change the model or draw from torch's RNG).

    Returns ``{"parameters", "tokens", "final_loss", "train_seconds", "tokens_per_s"}``.
    """
    import torch
    import torch.nn.functional as F

    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(train_config.threads)
    torch.use_deterministic_algorithms(True)
    try:
        world = World(world_config)
        tokenizer = build_tokenizer(world.vocabulary())
        vocab = tokenizer.get_vocab()
        model = build_model(len(vocab), tokenizer, model_config, train_config.seed)
        batches = PackedBatches(world, vocab, train_config.seed, train_config.batch_size,
                                train_config.block_size)
        optim = torch.optim.AdamW(model.parameters(), lr=train_config.lr, betas=(0.9, 0.98),
                                  weight_decay=train_config.weight_decay)
        model.train()
        start, loss_ema = time.perf_counter(), None
        bar = tqdm(range(train_config.steps), desc="toy pretrain", unit="step",
                   disable=not progress)
        for step in bar:
            for group in optim.param_groups:
                group["lr"] = lr_at(step, train_config)
            rows = batches.next()
            logits = model(input_ids=rows[:, :-1]).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.clip)
            optim.step()
            loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss_ema:.3f}")
            if callback is not None and (step + 1) % 100 == 0:
                model.eval()
                callback(step + 1, model, tokenizer)
                model.train()
        bar.close()
        seconds = time.perf_counter() - start
        model.eval()
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
    tokens = train_config.steps * train_config.batch_size * train_config.block_size
    return {"parameters": sum(p.numel() for p in model.parameters()), "tokens": tokens,
            "final_loss": round(loss_ema or 0.0, 4), "train_seconds": round(seconds, 1),
            "tokens_per_s": round(tokens / max(seconds, 1e-9))}
