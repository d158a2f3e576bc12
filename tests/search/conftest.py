"""Fixtures for the OpenSearch tests: one real OpenSearch node (ml-commons + neural-search) per session, a real
`searchtune serve` rerank server, and a small SciFact subset indexed into OpenSearch.

The node listens on 9451 (transport 9551), away from the Elasticsearch dev/test nodes (9200/9251) and the
OpenSearch dev node (9400); ``SEARCHTUNE_OS_URL`` reuses a running node instead (e.g. the dev node).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_OS_PORT = int(os.environ.get("SEARCHTUNE_TEST_OS_PORT", "9451"))
#: The rerank server and the in-process baseline must tokenize identically.
MAX_LENGTH = 128


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A real OpenSearch 2.19.1 with the rerank plugins: ``SEARCHTUNE_OS_URL`` when set, else a node started for
    this session (first run fetches ~0.4 GB from Maven Central; later runs reuse the cache, start in ~10 s)."""
    if os.environ.get("SEARCHTUNE_OS_URL"):
        yield os.environ["SEARCHTUNE_OS_URL"]
        return
    from searchtune.search.opensearch_node import opensearch_node

    node = opensearch_node(name="pytest", port=TEST_OS_PORT, heap="768m")
    node.start(timeout=300)
    try:
        yield node.url
    finally:
        node.stop()


@pytest.fixture(scope="session")
def os_rerank_server(base_model_path: str, tmp_path_factory):
    """`searchtune serve` on the bundled all-MiniLM-L6-v2 (cosine rerank), torch fp32, on a free port."""
    from searchtune.serve.process import start_server_process

    home = tmp_path_factory.mktemp("os-serve-home")
    server = start_server_process(base_model_path, backend="torch", env={"SEARCHTUNE_HOME": str(home)},
                                  extra_args=["--precision", "fp32", "--max-length", str(MAX_LENGTH)])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scifact_subset(scifact_dir: Path):
    """30 SciFact test queries and a 600-document corpus slice that holds all their relevant documents."""
    from searchtune.data import load_dataset

    ds = load_dataset(scifact_dir)
    queries = dict(sorted(ds.split_queries("test").items())[:30])
    qrels = {qid: rel for qid, rel in ds.split_qrels("test").items() if qid in queries}
    wanted = {did for rel in qrels.values() for did in rel}
    for did in sorted(ds.corpus):
        if len(wanted) >= 600:
            break
        wanted.add(did)
    docs = {did: ds.corpus[did] for did in sorted(wanted) if did in ds.corpus}
    return queries, qrels, docs


@pytest.fixture(scope="session")
def os_scifact_index(opensearch_url: str, scifact_subset):
    """The subset indexed into OpenSearch (id/title/text, BM25), deleted at the end of the session."""
    from opensearchpy import helpers

    from searchtune.search.client import opensearch_client

    _, _, docs = scifact_subset
    client = opensearch_client(opensearch_url)
    name = f"st8-scifact-{os.getpid()}"
    client.indices.create(index=name, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"id": {"type": "keyword"}, "title": {"type": "text"}, "text": {"type": "text"}}},
    })
    helpers.bulk(client, ({"_index": name, "_id": d.id, "_source": {"id": d.id, "title": d.title, "text": d.text}}
                          for d in docs.values()))
    client.indices.refresh(index=name)
    assert client.count(index=name)["count"] == len(docs)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)
