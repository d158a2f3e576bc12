"""Search pipelines with neural reranking for any Elasticsearch (and OpenSearch), as an HTTP gateway.

The gateway speaks Elasticsearch's REST API to clients and forwards to the real cluster. Searches that name a
pipeline (``?search_pipeline=NAME`` or an index's default pipeline) are widened, reranked by a model endpoint and
answered in the normal response shape; everything else passes through unchanged. See docs/gateway.md.
"""

__all__ = ["Pipeline", "PipelineError", "RerankSpec", "parse_pipeline"]


def __getattr__(name: str):
    """The pipeline names on first use: the CLI reads the gateway's defaults without importing its whole stack."""
    if name in __all__:
        from searchtune.gateway import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
