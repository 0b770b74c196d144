"""Knowledge corpora as records (docs/method.md, "Corpora"), one JSONL file per split.

========  ==========================================================================
kgfact    factual recall over a procedurally generated world of novel entities
kgfunc    function acquisition: novel digit operations, worked answers, unseen probe
simpleqa  adapter for SimpleQA (open-domain factual QA) from the upstream CSV
mquake    adapter for MQuAKE-CF-3k (knowledge editing, multi-hop consequences)
========  ==========================================================================

Python API::

    from mixsd.corpora import KGFactConfig, generate_corpus, write_corpus
    splits = generate_corpus("kgfact", KGFactConfig(size="small", seed=0))
    manifest = write_corpus("kgfact", KGFactConfig(seed=0), "data/kgfact")

Every generator is seeded and deterministic: the same config gives byte-identical files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd import __version__
from mixsd.artifacts import COMPLETE, Reuse, open_stage
from mixsd.config import StageConfig
from mixsd.corpora import kgfact, kgfunc, mquake, simpleqa
from mixsd.corpora.common import reference_answer
from mixsd.corpora.digitops import Operation, Step, execute
from mixsd.corpora.kgfact import KGFactConfig
from mixsd.corpora.kgfunc import KGFuncConfig
from mixsd.corpora.mquake import MQuAKEConfig
from mixsd.corpora.simpleqa import SimpleQAConfig
from mixsd.errors import ConfigError, RecordError
from mixsd.io import atomic_write_json
from mixsd.records import KnowledgeRecord, read_records, write_records

__all__ = ["CORPORA", "CorpusKind", "KGFactConfig", "KGFuncConfig", "MQuAKEConfig", "Operation",
           "SimpleQAConfig", "Step", "execute", "generate_corpus", "get_corpus",
           "read_corpus", "reference_answer", "write_corpus"]


@dataclass(frozen=True)
class CorpusKind:
    """A corpus ``mixsd corpus`` generates: its config class, builder, split names and
    format version (the loaded facts of a comparison are :class:`mixsd.corpora.load.Corpus`)."""

    name: str
    config_class: type[StageConfig]
    build: Callable[[Any], tuple[dict[str, list[KnowledgeRecord]], dict, dict]]
    splits: tuple[str, ...]
    version: str
    guidance: str  # the guidance preset that suits its targets (knowledge | math)
    description: str


CORPORA: dict[str, CorpusKind] = {
    "kgfact": CorpusKind("kgfact", KGFactConfig, kgfact.build, kgfact.SPLITS, kgfact.VERSION,
                         "knowledge", "factual recall over a world graph of novel entities"),
    "kgfunc": CorpusKind("kgfunc", KGFuncConfig, kgfunc.build, kgfunc.SPLITS, kgfunc.VERSION,
                         "math", "novel digit operations with worked answers and an unseen probe"),
    "simpleqa": CorpusKind("simpleqa", SimpleQAConfig, simpleqa.build, simpleqa.SPLITS,
                           simpleqa.VERSION, "knowledge", "SimpleQA adapter (upstream CSV)"),
    "mquake": CorpusKind("mquake", MQuAKEConfig, mquake.build, mquake.SPLITS, mquake.VERSION,
                         "knowledge", "MQuAKE-CF-3k adapter (upstream JSON)"),
}


def get_corpus(name: str) -> CorpusKind:
    """The registered corpus ``name``; a :class:`ConfigError` lists the known ones."""
    try:
        return CORPORA[name]
    except KeyError:
        raise ConfigError(f"corpus must be one of {', '.join(CORPORA)}, got {name!r}") from None


def _check_config(corpus: CorpusKind, config: StageConfig) -> None:
    if not isinstance(config, corpus.config_class):
        raise ConfigError(f"corpus {corpus.name} takes a {corpus.config_class.__name__}, "
                          f"got {type(config).__name__}")


def generate_corpus(name: str, config: StageConfig) -> dict[str, list[KnowledgeRecord]]:
    """Build corpus ``name`` in memory: ``{split: [KnowledgeRecord, ...]}``."""
    corpus = get_corpus(name)
    _check_config(corpus, config)
    return corpus.build(config)[0]


def write_corpus(name: str, config: StageConfig, out_dir: str | Path) -> dict[str, Any]:
    """Write corpus ``name`` to ``out_dir``: ``SPLIT.jsonl`` per non-empty split, extra files
    (``world.json``, ``operations.json``), ``config.yaml``, ``run.json`` and, last,
    ``manifest.json`` (generator, version, seed, sizes, options). Returns the manifest."""
    corpus = get_corpus(name)
    _check_config(corpus, config)
    start = time.perf_counter()
    out = Path(out_dir)
    splits, extra_files, stats = corpus.build(config)
    with open_stage(out, "corpus", {"corpus": name, **config.decisive_dict()},
                    reuse=Reuse(has_outputs=(out / "manifest.json").is_file())) as stage:
        manifest = _write_files(out, name, config, (splits, extra_files, stats))
        stage.write_info(config, status=COMPLETE, corpus=name,
                         wall_s=round(time.perf_counter() - start, 3))
        atomic_write_json(out / "manifest.json", manifest)
    return manifest


def _write_files(out: Path, name: str, config: StageConfig, built: tuple[Any, Any, Any]
                 ) -> dict[str, Any]:
    """Write a built corpus's splits and extra files into ``out``; return its manifest."""
    corpus = get_corpus(name)
    splits, extra_files, stats = built
    files = {}
    for split in corpus.splits:
        path = out / f"{split}.jsonl"
        if splits.get(split):
            write_records(path, splits[split])
            files[split] = path.name
        else:
            path.unlink(missing_ok=True)  # a stale file from an earlier run must not linger
    for filename, obj in extra_files.items():
        atomic_write_json(out / filename, obj)
    manifest = {
        "generator": name, "version": corpus.version, "mixsd_version": __version__,
        "seed": getattr(config, "seed", None), "guidance": corpus.guidance,
        "sizes": {split: len(splits.get(split, [])) for split in corpus.splits},
        "files": files, "extra_files": sorted(extra_files), "stats": stats,
        "options": config.to_dict(),
    }
    return manifest


def read_corpus(out_dir: str | Path) -> tuple[dict[str, Any], dict[str, list[KnowledgeRecord]]]:
    """Read back a corpus directory: ``(manifest, {split: records})`` for the written splits."""
    out = Path(out_dir)
    path = out / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError("no manifest.json: not a corpus directory (write one with "
                          "`mixsd corpus NAME --out DIR`)", path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise RecordError("must map split names to file names", path=str(path), field="files")
    return manifest, {split: read_records(out / name) for split, name in files.items()}
