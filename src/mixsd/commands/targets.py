"""Build supervision targets from knowledge records: MixSD mixing (default) or SFT's y*.

For each record the frozen model generates a target token by token; at each step a coin
with probability --lambda takes the token from the NAIVE prompt x, otherwise from the
EXPERT prompt x+ (the reference answer shown in context). Targets are verified against the
record's answer_key and regenerated with fresh coins up to --max-retries times; records
that never pass are written with verified: false (meta.failed_check says why).
--mix-unit word draws a new coin only where the next token starts a word (names stay whole),
span also keeps the expert while it copies y*; --verify-entities and --verify-round-trip
add stricter checks (see the README's "Mixing rules"). Output: one JSONL line per record (the
record plus `target` and `meta`) in the folder OUT: OUT/targets.jsonl (streamed to
OUT/targets.jsonl.partial), OUT/config.yaml and OUT/run.json (the summary); re-run the same
command to resume, --overwrite to start again (built beside OUT in .OUT.overwrite and renamed
over it when complete: killed, OUT keeps its old targets; the same command resumes). One
process writes OUT at a time: a second one is refused, naming the first. An OUT ending in .jsonl
is refused: targets are a folder (a single targets file made before stays readable by train and
analyze). --export trl (prompt/completion) or messages (chat) also writes the verified targets
for another trainer (TRL's SFTTrainer, axolotl, NeMo-RL) to OUT/export/FORMAT.jsonl, with the
chat convention they were built with (--chat-template-kwargs, --system-prompt; Qwen3 thinks
only when asked). Under `accelerate launch --multi_gpu -m mixsd targets`
or `torchrun -m mixsd targets` every process takes a share (records i % N == rank) and the
main process merges them in input order; the file equals a one-process run. A process that
dies ends the run: the others stop with an error naming its rank once its heartbeat file is
older than MIXSD_PEER_TIMEOUT_S seconds (default 60); finished shards are kept for the re-run.

Example:
  mixsd targets --model toy --data records.jsonl --out targets --lambda 0.3 \\
      --temperature 0 --top-k 64 --seed 0 --batch-size 32 --max-new-tokens 256 \\
      --max-retries 10 --guidance knowledge
  mixsd targets --model toy --data records.jsonl --out sft --method sft
  mixsd targets --model Qwen/Qwen3-1.7B --data records.jsonl --out q3 --lambda 0.3 \
      --export trl,messages   # + q3/export/trl.jsonl for TRL's SFTTrainer, messages.jsonl
  mixsd targets --model smollm2 --data records.jsonl --out word --lambda 0.5 \
      --mix-unit word --verify-entities --verify-round-trip
  accelerate launch --multi_gpu --num_processes 2 -m mixsd targets --model PATH \\
      --data records.jsonl --out targets
  torchrun --nproc_per_node 2 -m mixsd targets --model PATH --data records.jsonl \\
      --out targets    # CPU processes (gloo)
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.targets.config import TargetsConfig

    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="knowledge records (JSONL or JSON: ours, chat, prompt/completion)",
    )
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="targets folder to write (DIR/targets.jsonl, config.yaml, run.json)")
    TargetsConfig.add_arguments(parser)


def format_summary(summary: dict) -> str:
    """The one-screen summary printed by the CLI."""
    if summary.get("already_complete"):
        return "\n".join([
            f"{summary['out']} is already complete ({summary['records']} records); "
            "use --overwrite to rebuild it", *_exported(summary)])
    fraction = summary.get("mean_naive_token_fraction")
    rate = summary.get("tokens_per_s")
    lines = [
        f"targets written: {summary['out']}",
        f"  records           {summary['records']}"
        + (f" ({summary['resumed_records']} resumed)" if summary.get("resumed_records") else ""),
        f"  verified          {summary['verified']}",
        f"  unverified        {summary['unverified']} (kept out of training by default)",
        f"  prompt_too_long   {summary['prompt_too_long']}",
        f"  max_length        {summary['max_length']}",
        f"  naive fraction    {'n/a' if fraction is None else f'{fraction:.3f}'} (mean)",
        f"  attempts          {summary['mean_attempts']:.2f} (mean)",
    ]
    rejected = {k: v for k, v in (summary.get("rejected_attempts") or {}).items() if v}
    if rejected:
        lines.append("  rejected attempts " + ", ".join(f"{k} {v}" for k, v in rejected.items()))
    if summary.get("round_trip_tokens"):
        lines.append(f"  round trip        {summary['round_trip_tokens']} tokens, "
                     f"{summary['round_trip_s']:.1f} s")
    lines += [
        f"  tokens/s          {'n/a' if rate is None else f'{rate:.1f}'}",
        f"  wall_s            {summary['wall_s']:.1f}",
    ]
    return "\n".join(lines + _exported(summary))


def _exported(summary: dict) -> list[str]:
    return [f"  export {fmt:<10} {path}" for fmt, path in (summary.get("exported") or {}).items()]


def run(args: argparse.Namespace) -> str | None:
    from mixsd.targets import TargetsConfig, run_targets

    config = TargetsConfig.from_args(args)
    summary = run_targets(config, args.data, args.out)
    return format_summary(summary) if summary.get("rank", 0) == 0 else None
