"""Throughput of `mixsd train` (NLL) against a plain transformers Trainer on the same data.

Both sides train the same randomly initialised llama (same seed) on the same examples with the
same batch size, learning rate, schedule and epochs. The plain Trainer is set up directly, the
way a user would: tokenizer calls, DataCollatorForSeq2Seq. It runs twice: saving a checkpoint
every epoch like `mixsd train` does (the like-for-like comparison), and without checkpoints.
Each timed region is the whole call from the targets file on disk to the trained model
(reading, tokenising, training, saving). One warm-up round is discarded; rounds alternate and
the median wall time of each side gives tokens/s (non-padding tokens, prompt + target).

    .venv/bin/python bench/training.py [--examples 128] [--epochs 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_targets(path: Path, n: int, target_words: int) -> None:
    import random

    from mixsd.testing import WORDS

    rng = random.Random(0)
    names = ["alice", "bob", "carol", "dave", "erin"]
    rows = []
    for i in range(n):
        name = names[i % len(names)]
        target = " ".join(rng.choice(WORDS) for _ in range(rng.randint(target_words // 2,
                                                                         target_words)))
        rows.append({"id": f"b{i}", "prompt": f"where lives {name} ?", "answer": target,
                     "answer_key": "paris", "target": target, "meta": {"verified": True}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def build_model(tok, hidden: int, layers: int):
    from mixsd.testing import tiny_llama

    return tiny_llama(tok, hidden=hidden, layers=layers, heads=4, seed=0, max_positions=512)


def run_ours(args, tok, targets: Path, out: Path) -> float:
    from mixsd.training import TrainConfig, train

    model = build_model(tok, args.hidden, args.layers)
    config = TrainConfig(model="bench-in-memory", targets=str(targets), out=str(out),
                         epochs=args.epochs, lr=1e-4, batch_size=args.batch_size, device="cpu",
                         warmup_ratio=0.0, guidance="knowledge")
    start = time.perf_counter()
    train(config, model=model, tokenizer=tok)
    return time.perf_counter() - start


def plain_examples(tok, targets: Path) -> list[dict]:
    """Tokenised directly (no mixsd renderer): prompt ids + target ids + EOS."""
    rows = [json.loads(line) for line in targets.read_text().splitlines()]
    out = []
    for row in rows:
        prompt = tok(row["prompt"])["input_ids"]
        target = tok(row["target"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append({"input_ids": prompt + target, "labels": [-100] * len(prompt) + target})
    return out


def run_plain(args, tok, targets: Path, out: Path, save: bool) -> float:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model = build_model(tok, args.hidden, args.layers)
    start = time.perf_counter()
    examples = plain_examples(tok, targets)
    targs = TrainingArguments(output_dir=str(out), num_train_epochs=args.epochs, learning_rate=1e-4,
                              per_device_train_batch_size=args.batch_size,
                              lr_scheduler_type="constant_with_warmup", seed=0, use_cpu=True,
                              save_strategy="epoch" if save else "no", logging_strategy="epoch", report_to="none",
                              remove_unused_columns=False)
    trainer = Trainer(model=model, args=targs, train_dataset=examples,
                      data_collator=DataCollatorForSeq2Seq(tok, padding=True,
                                                           label_pad_token_id=-100),
                      processing_class=tok)
    trainer.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--target-words", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = steadier "
                        "timings on a shared machine)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    from mixsd.prompts import PromptRenderer
    from mixsd.records import read_targets
    from mixsd.testing import tiny_tokenizer
    from mixsd.training.data import nll_examples

    tok = tiny_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        targets = tmp / "targets.jsonl"
        make_targets(targets, args.examples, args.target_words)
        ours_examples, _ = nll_examples(read_targets(targets), PromptRenderer(tok, "knowledge"))
        plain = plain_examples(tok, targets)
        same = [e["input_ids"] for e in ours_examples] == [e["input_ids"] for e in plain]
        tokens = args.epochs * sum(len(e["input_ids"]) for e in plain)
        times: dict[str, list[float]] = {"ours": [], "saving": [], "nosave": []}
        for rep in range(args.repeats + 1):
            for name in times:
                out = tmp / f"{name}-{rep}"
                wall = (run_ours(args, tok, targets, out) if name == "ours" else
                        run_plain(args, tok, targets, out, save=name == "saving"))
                if rep:  # round 0 warms up caches and lazy imports
                    times[name].append(wall)
    tps = {name: tokens / statistics.median(walls) for name, walls in times.items()}
    print(f"torch threads {torch.get_num_threads()}, model hidden={args.hidden} "
          f"layers={args.layers}, {args.examples} examples x {args.epochs} epochs, batch "
          f"{args.batch_size}, {tokens} tokens; identical token ids on both sides: {same}")
    labels = {"ours": "mixsd train (checkpoint/epoch)", "saving": "plain Trainer (checkpoint/epoch)",
              "nosave": "plain Trainer (no checkpoints)"}
    for name, label in labels.items():
        walls = ", ".join(f"{w:.2f}" for w in times[name])
        print(f"{label:34s}: {tps[name]:9.0f} tokens/s  (wall s: {walls})")
    print(f"ratio mixsd / plain Trainer, same checkpoints = {tps['ours'] / tps['saving']:.3f}  "
          "(target >= 0.95)")
    print(f"ratio mixsd / plain Trainer, no checkpoints   = {tps['ours'] / tps['nosave']:.3f}")


if __name__ == "__main__":
    main()
