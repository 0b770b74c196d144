"""How the processes of a multi-process ``targets`` run share the work and wait for each other.

Process r of w (``RANK``/``WORLD_SIZE``, as ``torchrun``, ``accelerate launch`` or a person
set them) takes the records ``i % w == r``. The processes never meet in a collective call:
they coordinate through files beside the output, so a peer that dies cannot leave the others
blocked in a barrier. Each process keeps a heartbeat file fresh while it runs
(``OUT.shardRofW.alive``, touched by a daemon thread); a process that waits for a peer's
finished shard gives up once the peer's heartbeat is older than ``MIXSD_PEER_TIMEOUT_S``
seconds (default 60) and raises :class:`~mixsd.errors.PeerLostError` naming its rank. The
finished shards stay on disk and the same command resumes them.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mixsd.errors import ConfigError, PeerLostError

PEER_TIMEOUT_ENV = "MIXSD_PEER_TIMEOUT_S"
DEFAULT_PEER_TIMEOUT_S = 60.0


def peer_timeout_s() -> float:
    """Seconds without a heartbeat after which a peer counts as lost (``MIXSD_PEER_TIMEOUT_S``)."""
    raw = os.environ.get(PEER_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_PEER_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{PEER_TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return value


@dataclass(frozen=True)
class Shard:
    """This process's share of the work: rank ``rank`` of ``world`` processes."""

    rank: int
    world: int
    local_rank: int = 0

    def device(self, requested: str = "auto") -> str:
        """The device of this process: ``cuda:LOCAL_RANK`` when several share CUDA GPUs."""
        if self.world == 1 or requested not in ("", "auto", "cuda"):
            return requested
        import torch

        if not torch.cuda.is_available():
            return "cpu" if requested != "cuda" else requested
        return f"cuda:{self.local_rank % torch.cuda.device_count()}"

    def suffix(self, rank: int | None = None) -> str:
        """``.shardRofW`` (empty for a one-process run)."""
        if self.world == 1:
            return ""
        return f".shard{self.rank if rank is None else rank}of{self.world}"


def current_shard() -> Shard:
    """Rank and world size from the environment (one process when not launched distributed)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConfigError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({exc})") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK must be in [0, WORLD_SIZE), got RANK={rank} WORLD_SIZE={world}")
    return Shard(rank, world, local)


def heartbeat_path(out: Path, shard: Shard, rank: int | None = None) -> Path:
    return Path(f"{out}{shard.suffix(rank)}.alive")


class Heartbeat:
    """Keep ``path`` fresh (rewritten every ``interval_s``) while the ``with`` block runs.

    The file holds the rank and the process id, so a person (or a test) can find the process.
    """

    def __init__(self, path: Path, rank: int, interval_s: float,
                 watch: Callable[[], None] | None = None):
        self.path, self.rank, self.interval_s = path, rank, interval_s
        self.watch = watch
        self.lost: PeerLostError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="mixsd-heartbeat")

    def raise_if_peer_lost(self) -> None:
        """Raise the :class:`PeerLostError` the watcher found, if any (call between records)."""
        if self.lost is not None:
            raise self.lost

    def beat(self) -> None:
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"rank": self.rank, "pid": os.getpid(), "time": time.time()}))
        os.replace(tmp, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except OSError:  # a full disk must not kill the worker; peers will notice
                pass
            if self.watch is not None and self.lost is None:
                try:
                    self.watch()
                except PeerLostError as exc:
                    self.lost = exc

    def __enter__(self) -> Heartbeat:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def check_peers(out: Path, shard: Shard, ready: Callable[[int], bool], peers: list[int],
                since: float, what: str) -> list[int]:
    """The ranks of ``peers`` not ``ready`` yet; raise :class:`PeerLostError` for one whose
    heartbeat is older than the timeout, counted from ``since`` at the earliest (so a slow
    starter, or one whose file is left from an earlier run, gets the full timeout)."""
    timeout, now = peer_timeout_s(), time.time()
    waiting = [r for r in peers if not ready(r)]
    for rank in waiting:
        try:
            last = heartbeat_path(out, shard, rank).stat().st_mtime
        except FileNotFoundError:
            last = since
        silent = now - max(last, since)
        if silent > timeout:
            raise PeerLostError(rank, silent, what)
    return waiting


def heartbeat(out: Path, shard: Shard, ready: Callable[[int], bool]) -> Heartbeat:
    """This process's heartbeat for a run writing ``out``; it also watches the peers whose
    share is not ``ready`` (rank 0 waits for every peer's, the others for rank 0's)."""
    interval = min(5.0, max(0.05, peer_timeout_s() / 4))
    peers = [r for r in range(shard.world) if r != shard.rank]
    since = time.time()
    return Heartbeat(heartbeat_path(out, shard), shard.rank, interval,
                     watch=lambda: check_peers(out, shard, ready, peers, since, "while running"))


def wait_for_peers(out: Path, shard: Shard, ready: Callable[[int], bool], peers: list[int],
                   what: str, poll_s: float = 0.1) -> None:
    """Wait until ``ready(rank)`` holds for every rank of ``peers``; a peer whose heartbeat
    goes silent for the timeout raises :class:`PeerLostError` (see :func:`check_peers`)."""
    since = time.time()
    while check_peers(out, shard, ready, peers, since, what):
        time.sleep(poll_s)
