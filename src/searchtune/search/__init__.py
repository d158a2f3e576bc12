"""Search engines as data: cluster clients, indexing, BM25 retrieval and the engine connectors (Elasticsearch's
native inference, OpenSearch ml-commons). Node lifecycle lives in :mod:`searchtune.nodes`, the search-pipeline
gateway in :mod:`searchtune.gateway`."""
