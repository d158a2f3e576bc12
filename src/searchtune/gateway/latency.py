"""Recent model-call latency per endpoint, to tell a client when its pipeline's budget is below what the endpoint
takes: a CPU model that needs 0.9 s for ten documents behind a 0.5 s budget never reranks, and the response says so
(``"searchtune": {"budget_below_p50": {...}}``) instead of leaving only a stream of ``timeout`` fallbacks.

A timed-out call is recorded at its budget: a lower bound of the real time, which is what a median needs here.
"""

from __future__ import annotations

import statistics
from collections import deque

MIN_SAMPLES = 5


class LatencyWindow:
    def __init__(self, size: int = 50) -> None:
        self.size = size
        self._samples: dict[str, deque[float]] = {}

    def add(self, endpoint: str, ms: float) -> None:
        self._samples.setdefault(endpoint, deque(maxlen=self.size)).append(ms)

    def p50(self, endpoint: str) -> tuple[float, int] | None:
        """(median ms, samples) once there are enough samples."""
        samples = self._samples.get(endpoint)
        if not samples or len(samples) < MIN_SAMPLES:
            return None
        return statistics.median(samples), len(samples)

    def budget_note(self, endpoint: str, budget_s: float) -> dict | None:
        """What the response says when ``budget_s`` is at or below the endpoint's recent median."""
        found = self.p50(endpoint)
        if found is None or found[0] < budget_s * 1000 * 0.999:
            return None
        return {"budget_ms": round(budget_s * 1000, 1), "endpoint_p50_ms": round(found[0], 1), "samples": found[1],
                "hint": "raise the pipeline's timeout_ms (or the gateway's --timeout) above the endpoint's p50"}
