"""Defaults of the gateway's settings that the CLI shows in ``--help`` (kept import-light for it)."""

#: Model budget per search. A 10-document rerank by the bundled MiniLM on CPU through `searchtune serve` took p50
#: 4.0 s, max 5.4 s on the 2-core reference machine at load average 16 (benchmarks/rerank_budget.py; 0.6-1.8 s at
#: lighter load): the former 0.5 s meant the documented pipeline never reranked there. A GPU or a small window
#: answers far sooner and never waits this long; a pipeline's ``timeout_ms`` sets its own.
DEFAULT_TIMEOUT_S = 10.0

#: Largest request body. Elasticsearch's own ``http.max_content_length`` is 100 MB; bulk requests are best kept at
#: 5-15 MB, so 32 MiB leaves room while a 60 MB upload is refused before it is held in memory.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
