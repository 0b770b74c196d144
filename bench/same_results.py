"""Behaviour check for refactors: are two experiment folders the same up to time and place?

Compares ``results.json`` (ignoring timestamps, wall seconds, versions, paths and disk use)
and every ``targets/*.jsonl`` byte for byte. Exit 0 when equal, 1 with the differences.

Run (the issue-14 check; REF is a demo folder from before the change):
    .venv/bin/mixsd demo --out /tmp/demo-after
    .venv/bin/python bench/same_results.py /work/ref-demo /tmp/demo-after
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IGNORED = {"created", "versions", "wall_s", "seconds", "eval_s", "out", "disk_bytes",
           "git_commit", "round_trip_s"}


def differences(a, b, path: str = "") -> list[str]:
    """Paths where two JSON values differ, skipping keys in :data:`IGNORED`."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key in IGNORED:
                continue
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'after' if key not in a else 'before'}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    diffs = differences(json.loads((args.before / "results.json").read_text()),
                        json.loads((args.after / "results.json").read_text()))
    names = sorted(p.name for p in (args.before / "targets").glob("*.jsonl"))
    after_names = sorted(p.name for p in (args.after / "targets").glob("*.jsonl"))
    if names != after_names:
        diffs.append(f"targets files differ: {names} vs {after_names}")
    same = [n for n in names if n in after_names and (args.before / "targets" / n).read_bytes()
            == (args.after / "targets" / n).read_bytes()]
    diffs += [f"targets/{n}: bytes differ" for n in names if n in after_names and n not in same]
    print(f"results.json: {'equal' if not [d for d in diffs if not d.startswith('targets')] else 'DIFFERENT'}"
          f" (ignoring {', '.join(sorted(IGNORED))}); targets: {len(same)}/{len(names)} identical")
    for d in diffs[:50]:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
