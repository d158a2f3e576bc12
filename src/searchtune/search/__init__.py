"""Search engines as data: cluster clients, indexing, BM25 retrieval and the engine connectors (Elasticsearch's
native inference, OpenSearch ml-commons). Node lifecycle lives in :mod:`searchtune.nodes`, the search-pipeline
gateway in :mod:`searchtune.gateway`."""

#: Analyzers in the stock Elasticsearch test distribution (no analysis-common: no ``english``/stemmers). Here, not in
#: indexing.py, so that the CLI's option defaults do not import the cluster clients.
DEFAULT_ANALYZER = "standard"
