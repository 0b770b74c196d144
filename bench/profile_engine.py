"""Where a step of the fused engine goes, next to a step of ``model.generate`` (bench/README.md).

Times (perf_counter, with forward hooks on the model's modules) the engine's phases on the
same prompts as bench/mixing.py: the forward, split into attention blocks (q/k/v/o projections,
RoPE, SDPA over the cache), MLP blocks, the LM head and the rest (embeddings, norms, mask
construction: transformers' own per-call work); the cache bookkeeping around the forward;
the token choice (sampling and the mixing rule); and the remaining Python. The same hooks
time ``model.generate`` greedy on the naive prompts, for the comparison.

Run: .venv/bin/python bench/profile_engine.py [--model random|smollm2] [--batch 16]
     [--new-tokens 48] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from mixsd.targets import stream as stream_module
from mixsd.targets.engine import MixSettings


class Clock:
    """Seconds per label, from forward hooks and explicit sections."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._open: dict[int, float] = {}

        self.phase = "step"

    def hook(self, module, label: str) -> None:
        def pre(_m, _a):
            self._open[id(_m)] = time.perf_counter()

        def post(_m, _a, _o):
            self.seconds[f"{self.phase} {label}"] += time.perf_counter() - self._open.pop(id(_m))

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def instrument(model, clock: Clock) -> None:
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("self_attn", "attn"):
            clock.hook(module, "forward: attention blocks")
        elif leaf == "mlp":
            clock.hook(module, "forward: MLP blocks")
    clock.hook(model.get_output_embeddings(), "forward: LM head")
    clock.hook(model, "forward (total)")

    def phase(_m, _a, kwargs):  # a forward over more than one position is a prefill
        ids = kwargs.get("input_ids")
        clock.phase = "prefill" if ids is not None and ids.shape[1] > 1 else "step"

    model.register_forward_pre_hook(phase, with_kwargs=True, prepend=True)


def timed_step(clock: Clock):
    """MixStream.step with sections: inputs and cache views, forward, token choice."""
    original_choose = stream_module.MixStream._choose

    def choose(self, live, logits):
        start = time.perf_counter()
        try:
            return original_choose(self, live, logits)
        finally:
            clock.seconds["token choice (sampling, mixing rule)"] += (
                time.perf_counter() - start)

    stream_module.MixStream._choose = choose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("random", "smollm2"), default="random")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import mixing  # bench/mixing.py (run from bench/ or with bench on the path)

    if args.model == "smollm2":
        from mixsd.models import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer("smollm2", device="cpu", dtype="float32")
        jobs = mixing.smollm2_jobs(tok, args.batch)
        pad = tok.pad_token_id or 0
    else:
        model = mixing.build_model(8000, args.hidden, args.layers)
        jobs = mixing.build_jobs(args.batch, 8000)
        pad = 0
    settings = MixSettings(mix_lambda=0.3, temperature=0.0, max_new_tokens=args.new_tokens,
                           stop_token_ids=frozenset(), pad_id=pad, context_length=8192)
    mixing.time_generate(model, jobs, 4)
    mixing.time_engine(model, jobs, MixSettings(**{**settings.__dict__, "max_new_tokens": 4}))
    clock = Clock()
    instrument(model, clock)
    gen_wall = mixing.time_generate(model, jobs, args.new_tokens)
    gen = dict(clock.seconds)
    clock.seconds.clear()
    timed_step(clock)
    eng_wall, _ = mixing.time_engine(model, jobs, settings)
    eng = dict(clock.seconds)
    print(f"{args.model}: batch {len(jobs)}, {args.new_tokens} new tokens, "
          f"{torch.get_num_threads()} threads; seconds (share of the wall time)")
    parts_of = ["forward: attention blocks", "forward: MLP blocks", "forward: LM head"]
    for name, wall, parts in (("model.generate", gen_wall, gen), ("engine", eng_wall, eng)):
        print(f"{name}: wall {wall:.3f} s")
        accounted = 0.0
        for phase in ("prefill", "step"):
            forward = parts.get(f"{phase} forward (total)", 0.0)
            rows = [(k, parts.get(f"{phase} {k}", 0.0)) for k in parts_of]
            rows.append(("forward: the rest (embeddings, norms, masks)",
                         forward - sum(v for _, v in rows)))
            print(f"  {phase}: forward {forward:.3f} s ({100 * forward / wall:4.1f}%)")
            for k, v in rows:
                print(f"    {k:52s} {v:7.3f}  ({100 * v / wall:4.1f}%)")
            accounted += forward
        choice = parts.get("step token choice (sampling, mixing rule)", 0.0)
        if choice:
            print(f"  {'token choice (sampling, mixing rule)':54s} {choice:7.3f}  "
                  f"({100 * choice / wall:4.1f}%)")
        rest = wall - accounted - choice
        print(f"  {'outside: cache bookkeeping, inputs, Python':54s} {rest:7.3f}  "
              f"({100 * rest / wall:4.1f}%)")
    print(f"ratio engine / generate: {eng_wall / gen_wall:.2f}x")


if __name__ == "__main__":
    main()
