"""Search pipelines with neural reranking for any Elasticsearch (and OpenSearch), as an HTTP gateway.

The gateway speaks Elasticsearch's REST API to clients and forwards to the real cluster. Searches that name a
pipeline (``?search_pipeline=NAME`` or an index's default pipeline) are widened, reranked by a model endpoint and
answered in the normal response shape; everything else passes through unchanged. See docs/gateway.md.
"""

from searchtune.gateway.pipelines import Pipeline, PipelineError, RerankSpec, parse_pipeline

__all__ = ["Pipeline", "PipelineError", "RerankSpec", "parse_pipeline"]
