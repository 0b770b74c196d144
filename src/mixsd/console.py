"""A quiet console for long jobs: one progress bar on the terminal, everything else in a log.

``quiet_console(OUT/log.txt)`` sends what libraries print while it is active (the Trainer's
per-epoch dict, "Writing model shards" and "Loading weights" bars, warnings, ``logging``
records of transformers and mixsd) to the log file, and returns the real stderr stream, on
which :class:`GridBar` draws the only bar the user sees::

    with quiet_console(out / "log.txt") as console:
        bar = GridBar(total=len(grid), file=console)
        bar.start("sft lr=0.001 seed=0")
        bar.epoch(3)
        bar.done()
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

LOGGERS = ("transformers", "mixsd", "accelerate", "peft", "torch", "datasets", "huggingface_hub")


@contextlib.contextmanager
def quiet_console(log_path: str | Path | None, enabled: bool = True) -> Iterator[IO[str]]:
    """Redirect stdout, stderr, warnings and library logging to ``log_path`` (appended) while
    active; yield the terminal's stderr for the one progress bar. Disabled (or without a
    path) it changes nothing and yields ``sys.stderr``."""
    if not enabled or log_path is None:
        yield sys.stderr
        return
    from transformers.utils import logging as hf_logging

    terminal = sys.stderr
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    with open(path, "a", encoding="utf-8") as log, warnings.catch_warnings():
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
        for name in LOGGERS:
            lg = logging.getLogger(name)
            saved.append((lg, list(lg.handlers), lg.propagate, lg.level))
            lg.handlers = [handler]
            lg.propagate = False
            if name == "mixsd" and lg.level in (logging.NOTSET, logging.WARNING):
                lg.setLevel(logging.INFO)
        warnings.simplefilter("default")
        previous_showwarning = warnings.showwarning

        def showwarning(message: Any, category: Any, filename: str, lineno: int,
                        file: Any = None, line: Any = None) -> None:
            log.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = showwarning
        hf_logging.disable_progress_bar()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield terminal
        finally:
            warnings.showwarning = previous_showwarning
            if bars_were_enabled:
                hf_logging.enable_progress_bar()
            for lg, handlers, propagate, level in saved:
                lg.handlers, lg.propagate = handlers, propagate
                lg.setLevel(level)
            log.flush()


_OPEN_BARS: list[GridBar] = []


def close_bars() -> None:
    """Close every progress bar still drawn (a verb that stops on an error or a signal), so
    that the one-line message that follows starts on its own line."""
    for bar in list(_OPEN_BARS):
        bar.close()
    # Bars of the libraries underneath (the Trainer's step bar, a generation bar) as well.
    for other in list(getattr(tqdm, "_instances", ())):
        try:
            other.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the message
            pass


class GridBar:
    """The one progress bar of a grid of runs: the run being trained and its epoch."""

    def __init__(self, total: int, file: IO[str] | None = None, desc: str = "grid",
                 disable: bool = False):
        self.bar = tqdm(total=total, desc=desc, unit="run", file=file or sys.stderr,
                        dynamic_ncols=True, disable=disable)
        self.label = ""
        _OPEN_BARS.append(self)

    def start(self, label: str) -> None:
        """A new run (or stage) begins."""
        self.label = label
        self.bar.set_postfix_str(label, refresh=True)

    def epoch(self, epoch: int) -> None:
        """The current run finished training epoch ``epoch`` (its evaluation follows)."""
        self.bar.set_postfix_str(f"{self.label} epoch {epoch}", refresh=True)

    def done(self) -> None:
        """The current run is complete."""
        self.bar.update(1)

    def close(self) -> None:
        if self in _OPEN_BARS:
            _OPEN_BARS.remove(self)
        self.bar.set_postfix_str("", refresh=False)
        self.bar.close()
