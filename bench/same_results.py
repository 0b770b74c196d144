"""Behaviour check for refactors: are two experiment folders the same up to time and place?

Compares ``results.json`` (ignoring timestamps, wall seconds, versions, paths and disk use)
and every targets file byte for byte, whichever layout each folder has: an old folder's
``targets/NAME.jsonl`` is paired with a new folder's ``targets/NAME/targets.jsonl``.
Exit 0 when equal, 1 with the differences.

Run (the issue-14 check; REF is a demo folder from before the change):
    .venv/bin/mixsd demo --out /tmp/demo-after
    .venv/bin/python bench/same_results.py /work/ref-demo /tmp/demo-after
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IGNORED = {"created", "versions", "wall_s", "seconds", "eval_s", "edit_s", "out", "disk_bytes",
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


def targets_files(folder: Path) -> dict[str, Path]:
    """``{NAME: file}`` of a comparison's targets: ``targets/NAME.jsonl`` (the layout before
    targets became folders) or ``targets/NAME/targets.jsonl``."""
    found = {p.stem: p for p in (folder / "targets").glob("*.jsonl")}
    found.update({p.parent.name: p for p in (folder / "targets").glob("*/targets.jsonl")})
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    diffs = differences(json.loads((args.before / "results.json").read_text()),
                        json.loads((args.after / "results.json").read_text()))
    before, after = targets_files(args.before), targets_files(args.after)
    names = sorted(before)
    if names != sorted(after):
        diffs.append(f"targets differ: {names} vs {sorted(after)}")
    same = [n for n in names if n in after and before[n].read_bytes() == after[n].read_bytes()]
    diffs += [f"targets/{n}: bytes differ" for n in names if n in after and n not in same]
    print(f"results.json: {'equal' if not [d for d in diffs if not d.startswith('targets')] else 'DIFFERENT'}"
          f" (ignoring {', '.join(sorted(IGNORED))}); targets: {len(same)}/{len(names)} identical")
    for d in diffs[:50]:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
