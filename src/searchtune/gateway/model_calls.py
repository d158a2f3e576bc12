"""Every call from the gateway to a model endpoint goes through here: the endpoint allow-list is checked at call
time as well as at PUT (a pipeline written to the cluster around the gateway is never called), call times feed the
latency window behind the response's budget note, and an open circuit gets its recovery probe."""

from __future__ import annotations

import time
from collections.abc import Sequence

from searchtune.gateway.breaker import OPEN, CircuitBreaker
from searchtune.gateway.credentials import redact_url
from searchtune.gateway.endpoints import EndpointPolicy
from searchtune.gateway.latency import LatencyWindow
from searchtune.gateway.metrics import GatewayMetrics
from searchtune.gateway.pipelines import Pipeline, resolve_headers
from searchtune.gateway.recovery import RecoveryProbes
from searchtune.rerank_client import RerankClient, RerankError

#: A probe waits at least this long for its one-document answer (a CPU model's first call after a restart is slow).
PROBE_TIMEOUT_S = 2.0


class ModelCalls:
    def __init__(self, reranker: RerankClient, endpoints: EndpointPolicy, metrics: GatewayMetrics,
                 probe_interval_s: float = 0.5) -> None:
        self.reranker = reranker
        self.endpoints = endpoints
        self.metrics = metrics
        self.latency = LatencyWindow()
        self.probes = RecoveryProbes(probe_interval_s)

    async def rerank(self, endpoint: str, api: str | None, model: str | None, query: str, documents: Sequence[str],
                     headers: dict[str, str] | None = None, timeout: float = 1.0) -> list[float]:
        """RerankClient.rerank, for allowed endpoints only (else RerankError ``endpoint_not_allowed``, no call)."""
        if not self.endpoints.allows(endpoint):
            raise RerankError("endpoint_not_allowed", f"{redact_url(endpoint)} is not an allowed model endpoint")
        began = time.perf_counter()
        reached = True
        try:
            return await self.reranker.rerank(endpoint, api, model, query, documents, headers, timeout)
        except RerankError as exc:
            reached = exc.reason != "connect_error"  # nothing answered: says nothing about the model's speed
            raise
        finally:  # also when the search's budget cancels the call: then the time is a lower bound
            if reached:
                self.latency.add(endpoint, (time.perf_counter() - began) * 1000)

    def settle(self, pipeline: Pipeline, endpoint: str | None, breaker: CircuitBreaker, budget_s: float,
               info: dict) -> None:
        """After a pipeline's rerank step: breaker gauge, recovery probe while open, budget note in ``info`` (the
        response's ``searchtune`` object)."""
        if not endpoint:
            return
        is_open = breaker.state == OPEN
        self.metrics.breaker_open.labels(pipeline.name, redact_url(endpoint)).set(1 if is_open else 0)
        if is_open:
            spec = pipeline.rerank
            timeout = max(PROBE_TIMEOUT_S, budget_s)
            self.probes.watch(breaker, lambda: self.rerank(endpoint, spec.api, spec.model_id, "probe", ["probe"],
                                                           resolve_headers(spec.headers), timeout),
                              f"{pipeline.name} {redact_url(endpoint)}")
        note = self.latency.budget_note(endpoint, budget_s)
        if note is not None:
            info["budget_below_p50"] = note
