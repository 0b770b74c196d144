"""Generate a knowledge corpus as records JSONL, one file per split, plus manifest.json.

Corpora (docs/method.md, "Corpora"):
  kgfact    factual recall over a world graph of novel entities; splits train, recall,
            paraphrase, retrieval (the fact among --distractors others), two_hop,
            two_hop_context. --size small (5 domains x 10 entities) | large (7 x 25), or
            --domains N --entities M.
  kgfunc    novel digit operations over [0, 99999] under opaque labels, k-shot prompts and
            worked answers; splits train, heldout, unseen (the forgetting probe). Every
            answer is checked by executing its operation. Use --guidance math downstream.
  simpleqa  the SimpleQA CSV (metadata, problem, answer) -> train, recall.
  mquake    MQuAKE-CF-3k JSON -> edits (new object as the answer), multihop, single_hop.

OUT gets SPLIT.jsonl files, manifest.json (generator, version, seed, sizes, options),
config.yaml and run.json; kgfact adds world.json, kgfunc operations.json. The same options
and seed give byte-identical records. Run `mixsd corpus NAME --help` for a corpus' options.

Example:
  mixsd corpus kgfact --out data/kgfact --size small --seed 0
  mixsd corpus kgfact --out data/kgfact-big --domains 8 --entities 40 --distractors 50
  mixsd corpus kgfunc --out data/kgfunc --ops 8 --train-per-op 50 --shots 3
  mixsd corpus simpleqa --out data/simpleqa --source simple_qa_test_set.csv
  mixsd corpus mquake --out data/mquake --source MQuAKE-CF-3k.json
"""

from __future__ import annotations

import argparse

EXAMPLES = {
    "kgfact": "mixsd corpus kgfact --out data/kgfact --size large --distractors 50 --seed 0",
    "kgfunc": "mixsd corpus kgfunc --out data/kgfunc --ops 8 --train-per-op 50 --shots 3",
    "simpleqa": "mixsd corpus simpleqa --out data/simpleqa --source simple_qa_test_set.csv",
    "mquake": "mixsd corpus mquake --out data/mquake --source MQuAKE-CF-3k.json",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.corpora import CORPORA

    sub = parser.add_subparsers(dest="corpus", metavar="NAME", required=True,
                                help=", ".join(CORPORA))
    for name, corpus in CORPORA.items():
        doc = __import__(corpus.build.__module__, fromlist=["_"]).__doc__
        p = sub.add_parser(name, help=corpus.description, description=doc,
                           epilog=f"Example:\n  {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--out", required=True, metavar="DIR",
                       help="directory to write SPLIT.jsonl files and manifest.json into")
        corpus.config_class.add_arguments(p)


def format_summary(out: str, manifest: dict) -> str:
    """The one-screen summary printed by the CLI."""
    lines = [f"corpus {manifest['generator']} (v{manifest['version']}, seed "
             f"{manifest['seed']}) written to {out}"]
    for split, size in manifest["sizes"].items():
        lines.append(f"  {split:<16} {size:>6}" + ("" if size else "  (empty, not written)"))
    extra = ", ".join(["manifest.json", *manifest["extra_files"]])
    lines.append(f"  also: {extra}; guidance preset: {manifest['guidance']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    from mixsd.corpora import get_corpus, write_corpus

    corpus = get_corpus(args.corpus)
    config = corpus.config_class.from_args(args)
    return format_summary(args.out, write_corpus(args.corpus, config, args.out))
