"""Evaluation's greedy loop (rows leave the batch at their stop token) against
``model.generate`` (every row of a batch runs until its last one stops), suite by suite.

On SmolLM2-135M-Instruct (``make real``) with the real comparison's suites: the shipped
``general:120`` and ``instruct`` suites, memorisation of the 32 kgfact training questions
(``runs/real/kgfact``, made by ``make real-compare``) and their paraphrases, at the
comparison's batch (64) and answer lengths. Without it, a random 13M Llama on random prompts.
Each suite is timed reference, fast, reference (the two reference times averaged) and the
answers are compared: the fast path must give exactly the same samples.

    .venv/bin/python bench/evaluation.py [--checkpoint DIR ...] [--only random|smollm2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mixsd.evaluation.instruct as instruct_mod
import mixsd.evaluation.qa as qa_mod
from mixsd.generation import generate_reference, greedy_generate

CORPUS = Path("runs/real/kgfact")


def timed_suites(model, tokenizer, suites, batch_size: int) -> dict[str, dict]:
    """``{suite: {same, reference_s, fast_s, ratio, n}}`` for one model."""
    found = {}
    for name, suite in suites.items():
        runs = {}
        for label, fn in (("ref", generate_reference), ("fast", greedy_generate),
                          ("ref2", generate_reference)):
            qa_mod.greedy_generate = instruct_mod.greedy_generate = fn
            start = time.perf_counter()
            result = suite.evaluate(model, tokenizer, batch_size=batch_size)
            runs[label] = (time.perf_counter() - start,
                           [json.dumps(s, sort_keys=True, default=str) for s in result.samples])
        ref_s = (runs["ref"][0] + runs["ref2"][0]) / 2
        found[name] = {"same": runs["ref"][1] == runs["fast"][1] == runs["ref2"][1],
                       "reference_s": round(ref_s, 2), "fast_s": round(runs["fast"][0], 2),
                       "ratio": round(ref_s / runs["fast"][0], 2), "n": len(runs["fast"][1])}
    qa_mod.greedy_generate = instruct_mod.greedy_generate = greedy_generate
    return found


def smollm2(checkpoints: list[str]) -> dict[str, dict]:
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model, load_model_and_tokenizer

    specs = ["general:120", "instruct"]
    if (CORPUS / "train.jsonl").is_file():
        specs += [f"records:{CORPUS / 'train.jsonl'}", f"paraphrase:{CORPUS / 'paraphrase.jsonl'}"]
    suites = get_suites(specs, guidance="knowledge", max_new_tokens=48)
    model, tokenizer = load_model_and_tokenizer("smollm2", device="cpu", dtype="float32")
    found = {"smollm2": timed_suites(model, tokenizer, suites, 64)}
    for path in checkpoints:
        found[path] = timed_suites(load_model(path, device="cpu", dtype="float32"), tokenizer,
                                   suites, 64)
    return found


def random_model() -> dict[str, dict]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mixsd.testing import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=512,
                                         intermediate_size=1365, num_hidden_layers=4,
                                         num_attention_heads=8, num_key_value_heads=8)).eval()
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(7, tokenizer.vocab_size, (int(torch.randint(20, 60, (1,),
                                                                          generator=g)),),
                             generator=g).tolist() for _ in range(128)]
    free = generate_reference(model, tokenizer, prompts, max_new_tokens=48,
                              stop_token_ids={tokenizer.vocab_size - 1}, batch_size=64)
    stops = {row[3 + i % 20] for i, row in enumerate(free[::4]) if len(row) > 23}
    found = {}
    for label, fn in (("ref", generate_reference), ("fast", greedy_generate),
                      ("ref2", generate_reference)):
        start = time.perf_counter()
        out = fn(model, tokenizer, prompts, max_new_tokens=48, stop_token_ids=stops,
                 batch_size=64)
        found[label] = (time.perf_counter() - start, out)
    ref_s = (found["ref"][0] + found["ref2"][0]) / 2
    return {"random-13M": {"random prompts": {
        "same": found["ref"][1] == found["fast"][1], "reference_s": round(ref_s, 2),
        "fast_s": round(found["fast"][0], 2), "ratio": round(ref_s / found["fast"][0], 2),
        "n": len(prompts)}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="also time a trained checkpoint of SmolLM2 (a run's epoch-K)")
    parser.add_argument("--only", choices=["random", "smollm2"])
    args = parser.parse_args()
    from mixsd.models import resolve_model_path

    results = {}
    if args.only != "smollm2":
        results.update(random_model())
    try:
        resolve_model_path("smollm2")
        has_smollm2 = True
    except Exception:  # noqa: BLE001 - the package is optional here
        has_smollm2 = False
    if args.only != "random" and has_smollm2:
        results.update(smollm2(args.checkpoint))
    for model, suites in results.items():
        for suite, row in suites.items():
            print(f"{model:>24} {suite[:40]:<40} same={row['same']} n={row['n']:>4} "
                  f"generate {row['reference_s']:7.2f} s  own loop {row['fast_s']:7.2f} s  "
                  f"ratio {row['ratio']:.2f}x")
    total_ref = sum(r["reference_s"] for s in results.values() for r in s.values())
    total_fast = sum(r["fast_s"] for s in results.values() for r in s.values())
    print(f"all suites: generate {total_ref:.1f} s, own loop {total_fast:.1f} s, "
          f"{total_ref / total_fast:.2f}x; answers identical: "
          f"{all(r['same'] for s in results.values() for r in s.values())}")


if __name__ == "__main__":
    main()
