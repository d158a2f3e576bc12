"""Watch the run as a whole: wall time per stage and peak memory of every process involved (ours, our children,
and the Elasticsearch JVM, which is not our child when it runs as the service user)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil


def process_memory(proc: psutil.Process) -> int:
    """``proc``'s proportional set size (PSS: private pages plus its share of pages it shares), its RSS where PSS
    cannot be read (no /proc/PID/smaps_rollup, or another user's process without the rights).

    Why PSS: the processes of a run map the same libraries (torch alone is over a gigabyte) and forked children
    share their parent's pages; summed RSS counts those once per process. A quickstart run summed to 8.5 GiB of RSS
    while the machine's used memory rose by 4.6 GiB."""
    try:
        return int(proc.memory_full_info().pss)
    except (psutil.AccessDenied, AttributeError, OSError):
        return int(proc.memory_info().rss)


class PeakMemory:
    """Samples the summed memory (:func:`process_memory`) of this process tree plus extra pids (e.g. the search
    node) in a daemon thread."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.extra_pids: set[int] = set()
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-memory")

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def sample(self) -> int:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        for pid in list(self.extra_pids):
            try:
                extra = psutil.Process(pid)
                procs += [extra, *extra.children(recursive=True)]
            except psutil.Error:
                continue
        total = 0
        for proc in {p.pid: p for p in procs}.values():
            try:
                total += process_memory(proc)
            except psutil.Error:  # ended between listing and reading
                continue
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 2**30


class StageClock:
    """Wall seconds per named stage, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
