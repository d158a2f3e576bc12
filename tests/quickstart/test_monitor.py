"""The quickstart's peak-memory figure counts shared pages once (PSS), not once per process (summed RSS)."""

from __future__ import annotations

import multiprocessing
import time

import psutil

from searchtune.quickstart.monitor import PeakMemory, process_memory


def _hold(seconds: float) -> None:
    time.sleep(seconds)


def test_a_forked_child_sharing_our_pages_is_not_counted_twice() -> None:
    """A forked child maps all of this test process's pages copy-on-write: its RSS is about ours, its PSS splits
    them. Summed RSS would report roughly twice what the two processes use."""
    ballast = bytearray(300 * 2**20)  # 300 MiB of written pages, shared with the child after the fork
    ballast[::4096] = b"x" * len(ballast[::4096])
    child = multiprocessing.get_context("fork").Process(target=_hold, args=(60,), daemon=True)
    child.start()
    try:
        time.sleep(0.5)
        me, other = psutil.Process(), psutil.Process(child.pid)
        summed_rss = me.memory_info().rss + other.memory_info().rss
        measured = PeakMemory().sample()
        assert measured >= me.memory_info().rss * 0.9  # everything we hold is counted
        assert measured < summed_rss - 200 * 2**20, (measured, summed_rss)  # the shared 300 MiB is counted once
        assert process_memory(other) < other.memory_info().rss
    finally:
        child.kill()
        child.join(5)
    del ballast
