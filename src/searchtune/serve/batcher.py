"""An asyncio dynamic batcher shared by every route of the server.

Why: a request of one query and 50 documents is 50 model inputs; concurrent callers' inputs are merged into
micro-batches so the model runs few large forward passes instead of many small ones. Inputs arrive tokenized
(each unit knows its length, so nothing is tokenized here and nothing runs on the event loop but bookkeeping); they
are sorted by token length before batching (length buckets: less padding), each batch is bounded by inputs and by
padded tokens, and when the worker is idle and a request is still tokenizing it waits at most ``max_wait_s`` for
it. Inference runs in one worker thread, one batch per hand-off, so inputs of a request that timed out or went away are dropped before the
model spends time on them (a request ends at its budget, and so does the work done for it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)


T = TypeVar("T")


def token_bounded_batches(items: list[T], tokens: Callable[[T], int], max_inputs: int, max_tokens: int) -> list[list[T]]:
    """``items`` sorted longest first and cut into batches of at most ``max_inputs`` inputs and ``max_tokens``
    padded tokens (inputs x the longest): neighbours in length share a batch, so little of it is padding. The
    server's batcher and in-process corpus passes (serve/embedder.py) pack the same way."""
    ordered = sorted(items, key=tokens, reverse=True)
    batches: list[list[T]] = []
    current: list[T] = []
    for item in ordered:
        longest = tokens(current[0]) if current else tokens(item)  # sorted: the first is the longest
        if current and (len(current) >= max_inputs or longest * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(item)
    if current:
        batches.append(current)
    return batches


@dataclass
class _Item:
    unit: Any
    tokens: int
    future: asyncio.Future


@dataclass
class BatchStats:
    """Callbacks the batcher reports to (Prometheus metrics in the server); all optional."""

    on_batch: Callable[[int, int], None] | None = None  # (inputs, padded tokens)
    on_queue: Callable[[int], None] | None = None  # queue depth


class DynamicBatcher:
    def __init__(self, run: Callable[[list[Any]], list[Any]], length: Callable[[Any], int],
                 max_length: int, max_batch_inputs: int = 64, max_batch_tokens: int = 8192,
                 max_wait_s: float = 0.002, stats: BatchStats | None = None):
        self._run = run
        self._length = length
        self.max_length = max_length
        self.max_batch_inputs = max_batch_inputs
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.stats = stats or BatchStats()
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="searchtune-infer")
        self._task: asyncio.Task | None = None
        self._closing = False
        self._incoming = 0  # requests tokenizing in a thread, whose units are about to be submitted

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def submit(self, units: list[Any]) -> list[Any]:
        """Queue ``units``; return their results in order. Cancelling the caller drops its queued units."""
        if self._closing:
            raise RuntimeError("batcher is closed")
        loop = asyncio.get_running_loop()
        items = [_Item(u, min(self._length(u), self.max_length), loop.create_future()) for u in units]
        self._queue.extend(items)
        self._report_queue()
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(i.future for i in items)))
        finally:
            for item in items:
                item.future.cancel()  # no-op for finished ones; marks the rest as not wanted

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Mark a request whose units are on their way (tokenizing in a thread): while one is, an idle worker
        waits ``max_wait_s`` for it to join the next batch. With nobody on the way, waiting would only add latency
        (2 ms on every single query embedding a search waits for)."""
        self._incoming += 1
        try:
            yield
        finally:
            self._incoming -= 1

    async def close(self) -> None:
        """Finish everything queued, then stop the worker and its thread."""
        self._closing = True
        self._wakeup.set()
        if self._task:
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        return len(self._queue)

    def _report_queue(self) -> None:
        if self.stats.on_queue:
            self.stats.on_queue(len(self._queue))

    def _take(self) -> list[_Item]:
        """A window of pending inputs (a few batches' worth, so sorting by length has something to sort)."""
        window: list[_Item] = []
        while self._queue and len(window) < 4 * self.max_batch_inputs:
            item = self._queue.popleft()
            if not item.future.done():  # skip inputs of requests that timed out or disconnected
                window.append(item)
        self._report_queue()
        return window

    def _split(self, window: list[_Item]) -> list[list[_Item]]:
        return token_bounded_batches(window, lambda i: i.tokens, self.max_batch_inputs, self.max_batch_tokens)

    def _run_batch(self, batch: list[_Item]) -> list[Any] | BaseException:
        try:
            result = self._run([i.unit for i in batch])
        except Exception as exc:  # reported to the callers of this batch only
            log.exception("inference failed for a batch of %d", len(batch))
            result = exc
        if self.stats.on_batch:
            self.stats.on_batch(len(batch), len(batch) * batch[0].tokens)
        return result

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if (self._incoming and len(self._queue) < self.max_batch_inputs and self.max_wait_s > 0
                    and not self._closing):
                await asyncio.sleep(self.max_wait_s)  # let concurrent callers join this batch
            window = self._take()
            if not window:
                continue
            for batch in self._split(window):
                batch = [i for i in batch if not i.future.done()]  # callers gone while earlier batches ran
                if not batch:
                    continue
                result = await loop.run_in_executor(self._executor, self._run_batch, batch)
                for k, item in enumerate(batch):
                    if item.future.done():
                        continue
                    if isinstance(result, BaseException):
                        item.future.set_exception(result)
                    else:
                        item.future.set_result(result[k])
