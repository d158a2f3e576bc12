"""Prometheus metrics of one server instance (own registry, so several apps can live in one process, e.g. tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("searchtune_requests", "HTTP requests by route and status.", ["route", "status"],
                                registry=r)
        self.latency = Histogram("searchtune_request_latency_seconds", "Request latency by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("searchtune_batch_size", "Model inputs per forward pass.", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.batch_tokens = Counter("searchtune_batch_padded_tokens", "Padded tokens processed by the model.",
                                    registry=r)
        self.queue_depth = Gauge("searchtune_queue_depth", "Model inputs waiting in the batcher.", registry=r)
        self.tokens = Counter("searchtune_input_tokens", "Input tokens received (before truncation).", registry=r)
        self.truncations = Counter("searchtune_truncations", "Inputs truncated to the model's max length.",
                                   registry=r)
        self.documents = Counter("searchtune_documents", "Documents or texts scored or embedded.", registry=r)
        self.swaps = Counter("searchtune_model_swaps", "Hot swaps of the served model.", ["outcome"], registry=r)
        self.model = Info("searchtune_model", "The model being served.", registry=r)

    def on_batch(self, inputs: int, padded_tokens: int) -> None:
        self.batch_size.observe(inputs)
        self.batch_tokens.inc(padded_tokens)
