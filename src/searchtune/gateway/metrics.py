"""Prometheus metrics of one gateway process (own registry, so several apps can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("searchtune_gateway_requests_total", "Requests answered, by kind and HTTP status.",
                                ["kind", "status"], registry=self.registry)
        self.request_seconds = Histogram("searchtune_gateway_request_seconds", "Time to answer, by kind.", ["kind"],
                                         buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.reranks = Counter("searchtune_gateway_rerank_total", "Pipeline searches, by pipeline and outcome "
                               "(reranked, fallback, skipped).", ["pipeline", "outcome"], registry=self.registry)
        self.fallbacks = Counter("searchtune_gateway_fallback_total", "Searches answered in the cluster's order "
                                 "because the model failed, by reason.", ["pipeline", "reason"], registry=self.registry)
        self.rerank_seconds = Histogram("searchtune_gateway_rerank_seconds", "Model call time.", ["pipeline"],
                                        buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.breaker_open = Gauge("searchtune_gateway_breaker_open", "1 while a pipeline's circuit to an endpoint is "
                                  "open.", ["pipeline", "endpoint"], registry=self.registry)
