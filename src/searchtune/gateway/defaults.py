"""Defaults of the gateway's settings that the CLI shows in ``--help`` (kept import-light for it)."""

#: Model budget per search. A 10-document rerank by the bundled MiniLM on CPU took up to 1.8 s on the 2-core
#: reference machine under load (docs/gateway.md, "Budgets"); the former 0.5 s meant the documented pipeline never
#: reranked there. A GPU or a small window answers far sooner; a pipeline's ``timeout_ms`` sets its own.
DEFAULT_TIMEOUT_S = 5.0

#: Largest request body. Elasticsearch's own ``http.max_content_length`` is 100 MB; bulk requests are best kept at
#: 5-15 MB, so 32 MiB leaves room while a 60 MB upload is refused before it is held in memory.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
