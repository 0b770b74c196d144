"""The COMPUTED memory table of docs/scale.md: bytes per stage from parameter counts.

Not a timing: every number is arithmetic on the exact parameter counts of Qwen3-1.7B and
Qwen3-8B (from their layer shapes; a test holds the formula equal to the parameters of a
model transformers builds) and on the byte counts of each stage's tensors. Activations are left out (they depend on batch
and sequence length; gradient checkpointing makes them small). docs/scale.md holds this
script's output between its ``computed-table`` markers; a test keeps them equal.

    .venv/bin/python bench/scale_memory.py            # print the table (Markdown)
"""

from __future__ import annotations

GIB = 2 ** 30

# Public architectures (config.json of Qwen/Qwen3-1.7B and Qwen/Qwen3-8B).
ARCHITECTURES = {
    "Qwen3-1.7B": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       vocab_size=151936, tie_word_embeddings=True),
    "Qwen3-8B": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                     vocab_size=151936, tie_word_embeddings=False),
}
GPUS = 8             # the node of docs/scale.md
TARGET_BATCH = 32    # records advanced together by `mixsd targets` (2 rows each)
TARGET_TOKENS = 512  # expert prompt (with the reference answer) + the generated target
OPSD_ROWS = 2 * 4    # per-device prompts x rollouts of OPSD (batch 2, 4 rollouts)
EVAL_BATCH = 64      # prompts per batch of the evaluation
EVAL_TOKENS = 1024   # question + a reasoned answer (math suites generate up to 512)
DRIFT_POSITIONS = 32 * 48  # drift prompts x their positions
LORA_RANK = 16


def counts(name: str) -> dict[str, int]:
    """Parameter counts of one architecture: total, and of LoRA (rank 16, every linear
    layer of the blocks), by the layer shapes of Qwen3 (no biases, RMS norms, q/k norms;
    :func:`counts_of_model` checks the formula against a model built by transformers)."""
    a = ARCHITECTURES[name]
    h, inter, heads, kv, hd = (a["hidden_size"], a["intermediate_size"],
                               a["num_attention_heads"], a["num_key_value_heads"], a["head_dim"])
    linears = [(h, heads * hd), (h, kv * hd), (h, kv * hd), (heads * hd, h),
               (h, inter), (h, inter), (inter, h)]
    block = sum(i * o for i, o in linears) + 2 * hd + 2 * h
    embeddings = a["vocab_size"] * h * (1 if a["tie_word_embeddings"] else 2)
    total = embeddings + a["num_hidden_layers"] * block + h
    lora = a["num_hidden_layers"] * sum(LORA_RANK * (i + o) for i, o in linears)
    return {"params": total, "lora": lora, "layers": a["num_hidden_layers"], "kv": kv * hd}


def counts_of_model(architecture: dict) -> dict[str, int]:
    """The same counts read off a ``Qwen3ForCausalLM`` of ``architecture`` (for the test)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    model = Qwen3ForCausalLM(Qwen3Config(**architecture))
    total = sum(p.numel() for p in model.parameters())  # tied embeddings counted once
    lora = sum(LORA_RANK * (m.in_features + m.out_features)
               for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and ".layers." in n)
    return {"params": total, "lora": lora}


def kv_bytes(c: dict[str, int], rows: int, tokens: int) -> int:
    """bf16 key/value cache of ``rows`` sequences of ``tokens``."""
    return rows * tokens * c["layers"] * 2 * c["kv"] * 2


def stages(c: dict[str, int]) -> list[tuple[str, str, float]]:
    """``(stage, what is counted, GiB per GPU)`` rows."""
    p, lora = c["params"], c["lora"]
    adam = 16 * lora  # fp32 adapter + grad + two AdamW moments
    return [
        ("targets (bf16)", f"weights 2P + KV cache of {TARGET_BATCH} records x 2 rows x "
         f"{TARGET_TOKENS} tokens", (2 * p + kv_bytes(c, 2 * TARGET_BATCH, TARGET_TOKENS)) / GIB),
        ("full FT, one GPU, --dtype auto", "fp32 weights 4P + grads 4P + AdamW 8P",
         16 * p / GIB),
        ("full FT, one GPU, --dtype bfloat16", "bf16 weights 2P + grads 2P + AdamW (bf16) 4P",
         8 * p / GIB),
        (f"full FT, ZeRO-3 over {GPUS} GPUs, --dtype bfloat16",
         "(bf16 weights 2P + grads 2P + fp32 master 4P + AdamW 8P) / 8", 16 * p / GPUS / GIB),
        (f"full FT, ZeRO-3 over {GPUS} GPUs, host RAM while loading",
         f"{GPUS} processes x bf16 weights 2P (x2 with --dtype auto)", GPUS * 2 * p / GIB),
        ("LoRA r=16, --dtype bfloat16", "frozen bf16 weights 2P + adapter A x 16 bytes",
         (2 * p + adam) / GIB),
        ("LoRA r=16, --dtype auto", "frozen fp32 weights 4P + adapter x 16 bytes",
         (4 * p + adam) / GIB),
        ("OPSD full FT, one GPU, --dtype auto (mixsd train)",
         "full FT + frozen fp32 teacher copy 4P + rollout KV",
         (20 * p + kv_bytes(c, OPSD_ROWS, TARGET_TOKENS)) / GIB),
        ("OPSD full FT, one GPU, --dtype auto (mixsd compare)",
         "full FT + the comparison's bf16 base model 2P as the teacher (no copy) + rollout KV",
         (18 * p + kv_bytes(c, OPSD_ROWS, TARGET_TOKENS)) / GIB),
        ("OPSD LoRA, --dtype bfloat16", "LoRA (the teacher is the adapter disabled) + "
         "rollout KV", (2 * p + adam + kv_bytes(c, OPSD_ROWS, TARGET_TOKENS)) / GIB),
        ("evaluation (bf16)", f"weights 2P + KV cache of {EVAL_BATCH} x {EVAL_TOKENS} tokens",
         (2 * p + kv_bytes(c, EVAL_BATCH, EVAL_TOKENS)) / GIB),
        ("epoch evaluation under ZeRO-3 (main GPU)", "the saved checkpoint in bf16 2P + KV, "
         "beside its training shard", (2 * p + kv_bytes(c, EVAL_BATCH, EVAL_TOKENS)
                                       + 16 * p / GPUS) / GIB),
        ("compare: base model while runs train", "host RAM: bf16 base 2P (moved off the GPU) "
         "+ drift log-probs", (2 * p + DRIFT_POSITIONS * 151936 * 4) / GIB),
        ("compare: Fisher (--fisher-examples > 0)", "host RAM: Fisher + base weights fp32 8P "
         "+ a checkpoint fp32 4P", 12 * p / GIB),
    ]


def table() -> str:
    """The Markdown table of every architecture's stages (GiB)."""
    found = {name: counts(name) for name in ARCHITECTURES}
    head = "| stage | what is counted | " + " | ".join(
        f"{n} ({c['params'] / 1e9:.2f}B) GiB" for n, c in found.items()) + " |"
    lines = [head, "|---|---|" + "---:|" * len(found),
             "| parameters | P (tied embeddings counted once); A = LoRA r=16 on every linear "
             "layer of the blocks | " + " | ".join(
                 f"P {c['params'] / 1e9:.3f}B, A {c['lora'] / 1e6:.1f}M" for c in found.values())
             + " |"]
    rows = {name: stages(c) for name, c in found.items()}
    first = rows[next(iter(rows))]
    for i, (stage, what, _) in enumerate(first):
        values = " | ".join(f"{rows[n][i][2]:.1f}" for n in found)
        lines.append(f"| {stage} | {what} | {values} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
