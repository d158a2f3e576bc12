"""A circuit breaker per model endpoint, so a dead endpoint costs searches nothing after a few failures.

closed -> (``failure_threshold`` consecutive failures) -> open: calls are refused at once -> after
``reset_timeout`` seconds half-open: one trial call goes through; success closes, failure re-opens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


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

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self._clock()


class BreakerRegistry:
    """One breaker per endpoint URL, created on first use with shared settings."""

    def __init__(self, failure_threshold: int = 3, reset_timeout: float = 10.0) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, endpoint: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            breaker = self._breakers.setdefault(endpoint, CircuitBreaker(self.failure_threshold, self.reset_timeout))
        return breaker

    def states(self) -> dict[str, str]:
        return {endpoint: b.state for endpoint, b in self._breakers.items()}
