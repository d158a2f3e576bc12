"""Half-open probes: while a circuit is open, one tiny rerank call (one document) goes to the endpoint every
``interval_s``. The probe is the half-open trial, made without a search waiting on it: its first answer closes the
circuit, so reranking resumes within about a second of the model answering again, instead of waiting out
``--breaker-reset`` (and no search falls back while a trial search runs).

Only one probe loop runs per breaker, and only while it is open: a healthy endpoint gets no extra traffic, a dead
one gets one small request per interval (not one per search).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from searchtune.gateway.breaker import OPEN, CircuitBreaker, is_endpoint_failure
from searchtune.rerank_client import RerankError

log = logging.getLogger("searchtune.gateway")


class RecoveryProbes:
    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._tasks: dict[int, asyncio.Task] = {}

    def watch(self, breaker: CircuitBreaker, probe: Callable[[], Awaitable[object]], label: str) -> None:
        """Start probing ``breaker``'s endpoint with ``probe()`` unless a probe loop already runs for it."""
        running = self._tasks.get(id(breaker))
        if running is not None and not running.done():
            return
        self._tasks[id(breaker)] = asyncio.create_task(self._probe_until_answered(breaker, probe, label))

    async def _probe_until_answered(self, breaker: CircuitBreaker, probe: Callable[[], Awaitable[object]],
                                    label: str) -> None:
        while breaker.state == OPEN:
            await asyncio.sleep(self.interval_s)
            try:
                await probe()
                answered = True
            except RerankError as exc:
                answered = not is_endpoint_failure(exc.reason)
            except Exception:  # noqa: BLE001 - a probe is a question, never an error
                answered = False
            if answered:
                breaker.record_success()
                log.info("model endpoint answers again", extra={"event": "breaker_probe", "breaker": label})
                return

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
