"""A circuit breaker per (pipeline, endpoint), so a dead endpoint costs searches nothing after a few failures.

closed -> (``failure_threshold`` consecutive failures) -> open: calls are refused at once -> half-open: one trial
call goes through; success closes, failure re-opens. Half-open comes after ``reset_timeout`` seconds; sooner, the
recovery probe (recovery.py) makes that trial itself and closes the circuit on the endpoint's first answer, so
reranking resumes within about a second of the model coming back rather than up to ``reset_timeout`` later.

What counts as a failure is the endpoint's fault only (:func:`is_endpoint_failure`): a 4xx answer (413 for a too
large window, 400 for bad input) is the request's fault and proves the endpoint alive. Keying by pipeline as well
keeps one pipeline's short budget (its timeouts) from opening the circuit for another pipeline's longer one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from searchtune.gateway.credentials import redact_url

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def is_endpoint_failure(reason: str) -> bool:
    """Does a failed call (its RerankError reason) say the endpoint is unwell? Not for 4xx answers other than
    408/429 (the request's fault), nor for a call the gateway refused to make (``endpoint_not_allowed``)."""
    if reason == "endpoint_not_allowed":
        return False
    if reason.startswith("http_4"):
        return reason in ("http_408", "http_429")
    return True


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 3, reset_timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._state = CLOSED
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call at a time."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self._clock() - self._opened_at < self.reset_timeout:
                return False
            if self._trial_running:
                return False
            self._state = HALF_OPEN
            self._trial_running = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._state = CLOSED
            self._trial_running = False

    def record_error(self, reason: str) -> None:
        """A failed call: a failure when the endpoint is at fault, else proof that it answers."""
        if is_endpoint_failure(reason):
            self.record_failure()
        else:
            self.record_success()

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self._clock()


class BreakerRegistry:
    """One breaker per (pipeline, endpoint URL), created on first use with shared settings."""

    def __init__(self, failure_threshold: int = 3, reset_timeout: float = 10.0) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, pipeline: str, endpoint: str) -> CircuitBreaker:
        key = (pipeline, endpoint)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers.setdefault(key, CircuitBreaker(self.failure_threshold, self.reset_timeout))
        return breaker

    def states(self) -> dict[str, str]:
        """``"pipeline endpoint"`` -> state, endpoints shown without credentials."""
        return {f"{pipeline} {redact_url(endpoint)}": b.state for (pipeline, endpoint), b in self._breakers.items()}
