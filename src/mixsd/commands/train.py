"""Fine-tune a model on a targets file (next-token NLL) or with OPSD.

`--method nll` (default) trains on `target` given the NAIVE prompt, prompt tokens masked; it
serves SFT, offline self-distillation (lambda = 0) and MixSD, which differ only in the targets
file. Targets whose answer failed verification are skipped unless --include-unverified.
`--method opsd` runs on-policy self-distillation on a records file (--data). Every epoch is
checkpointed to RUN_DIR/epoch-<k>/; re-running the same command after a kill (or Ctrl-C,
SIGTERM) resumes. --keep chooses the epochs that keep their weights (default selected,last:
the epoch that selection picks from the epoch metrics, and the last); the others keep only
their metrics.

Example:
  mixsd train --model toy --targets targets --out runs/mixsd --epochs 3 --lr 1e-5
  mixsd train --model toy --targets targets --out runs/lora --lora --lora-r 8
  mixsd train --model toy --targets targets --out runs/all --keep all   # every epoch
  mixsd train --model toy --method opsd --data records.jsonl --out runs/opsd --rollouts 4
  accelerate launch --multi_gpu --num_processes 2 -m mixsd train --model toy \\
      --targets targets --out runs/ddp      # 2 processes (gloo on CPU, NCCL on GPUs)
  accelerate launch --multi_gpu --num_processes 8 -m mixsd train --model Qwen/Qwen3-8B \\
      --targets targets --out runs/q8 --batch-size 2 --dtype bfloat16 \\
      --deepspeed docs/scale/ds_zero3.json --gradient-checkpointing   # docs/scale.md
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.training.config import TrainConfig

    TrainConfig.add_arguments(parser)


def run(args: argparse.Namespace) -> str | None:
    from mixsd.training import TrainConfig, train

    config = TrainConfig.from_args(args)
    result = train(config)
    # Under `accelerate launch` every process runs this; only the main one reports.
    return result.summary() if result.main_process else None
