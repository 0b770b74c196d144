"""The ``mixsd`` command line: a thin shell over the Python API.

Each verb lives in ``mixsd.commands.<verb>``; its one-line summary is in :data:`COMMANDS`
(so ``mixsd --help`` imports no verb). Plug-ins add verbs of their own (the ``verbs``
registry of :mod:`mixsd.registry`); :func:`commands` lists both. The module provides a docstring (description and example, shown by ``--help``), ``add_arguments(parser)`` and
``run(args) -> str | None`` (the summary, printed here). Verb modules are imported only when
used, so ``mixsd --help`` is instant. User mistakes (:class:`~mixsd.errors.MixsdError`) print
one line and exit 2; no traceback; so does a write that the disk or a permission refused
where no stage named it first (an ``OSError`` of :func:`~mixsd.errors.is_write_failure`). Ctrl-C (SIGINT) and SIGTERM stop a verb the same way,
between two writes: every finished artifact stays valid, the same command resumes, and the
exit code is 130 (SIGINT) or 143 (SIGTERM) with a one-line message.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys

from mixsd import __version__
from mixsd.console import close_bars
from mixsd.errors import ArtifactWriteError, MixsdError, is_write_failure
from mixsd.registry import REGISTRIES, load_plugins

# verb -> one-line help (kept here so `mixsd --help` imports nothing heavy)
COMMANDS = {
    "corpus": "generate a knowledge corpus (kgfact, kgfunc, simpleqa, mquake) as records JSONL",
    "targets": "build supervision targets (MixSD mixing, or SFT's y*) from records",
    "train": "fine-tune a model on a targets file (NLL) or with OPSD",
    "edit": "write facts into a model with MEMIT (no training)",
    "eval": "score a model on memorisation and retention suites",
    "analyze": "target NLL under the base model; Fisher-weighted displacement; mixing-rule table",
    "report": "Markdown/HTML report with plots from results.json files",
    "compare": "run every method on one corpus with identical evaluation and one report",
    "demo": "run `compare` on the embedded toy world model",
    "inject": "teach a model new facts under a forgetting budget; ship it with a model card",
}

EPILOG = "Run `mixsd VERB --help` for a verb's options and an example."


def commands() -> dict[str, str]:
    """Every verb -> its one-line help: the built-in ones, then the plug-ins' verbs."""
    found = dict(COMMANDS)
    for name in REGISTRIES.verbs.names():
        found.setdefault(name, REGISTRIES.verbs.get(name).help)
    return found


def _module_name(verb: str) -> str:
    added = REGISTRIES.verbs.find(verb) if verb not in COMMANDS else None
    return added.module if added is not None else f"mixsd.commands.{verb}"


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<9} {text}" for name, text in commands().items())
    parser = argparse.ArgumentParser(
        prog="mixsd", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="MixSD: inject new knowledge into causal LMs without forgetting.\n\n"
        f"verbs:\n{lines}", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"mixsd {__version__}")
    parser.add_argument("verb", nargs="?", help="one of: " + ", ".join(commands()))
    return parser


def build_parser(verb: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of one verb and its command module."""
    module = importlib.import_module(_module_name(verb))
    parser = argparse.ArgumentParser(
        prog=f"mixsd {verb}", description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser, module


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same cleanup runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while a verb runs (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mixsd`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins()  # the verbs of plug-ins; a broken plug-in is one line, no traceback
    except MixsdError as exc:
        print(f"mixsd: error: {exc}", file=sys.stderr)
        return 2
    if not argv or argv[0].startswith("-"):
        parser = _top_parser()
        parser.parse_args(argv)  # handles --help and --version
        parser.print_help(sys.stderr)
        return 2
    verb, rest = argv[0], argv[1:]
    if verb not in commands():
        _top_parser().error(f"unknown verb {verb!r}; choose from {', '.join(commands())}")
    parser, module = build_parser(verb)
    args = parser.parse_args(rest)
    try:
        try:
            with _sigterm_as_interrupt():
                summary = module.run(args)
        except OSError as exc:
            if not is_write_failure(exc):
                raise
            raise ArtifactWriteError(exc.filename or "a file", exc) from exc
    except MixsdError as exc:
        close_bars()
        print(f"mixsd {verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        close_bars()
        terminated = isinstance(exc, Terminated)
        print(f"mixsd {verb}: {'terminated (SIGTERM)' if terminated else 'interrupted'}; "
              "finished artifacts are kept: re-run the same command to resume", file=sys.stderr)
        return 143 if terminated else 130
    if summary:
        print(summary)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
