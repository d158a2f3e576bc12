"""Retrieval quality through OpenSearch's own rerank pipeline equals in-process reranking with the same model.

Real node, real `searchtune serve`, real SciFact test queries (a 15-query subset, BM25 top-10). The in-process
baseline scores exactly the text OpenSearch sends for ``document_fields: [title, text]`` (the two values
concatenated without a separator), so any gap would be a wiring fault, not a text difference.
"""

from __future__ import annotations

import os

import pytest

from searchtune.data.records import Document
from searchtune.eval.metrics import evaluate
from searchtune.eval.pipeline_run import search_through_pipeline
from searchtune.eval.rerank import rerank_run
from searchtune.scoring import load_scorer
from searchtune.search import opensearch_ml as osml
from searchtune.search.client import opensearch_client
from searchtune.search.retrieval import bm25_search

TOP_K = 10
NUM_QUERIES = 15
#: must equal tests/conftest.py MAX_LENGTH (the server's --max-length)
MAX_LENGTH = 128


def test_pipeline_reproduces_in_process_ndcg(opensearch_url, os_rerank_server, os_scifact_index, scifact_subset,
                                             base_model_path) -> None:
    queries, qrels, _ = scifact_subset
    queries = dict(list(queries.items())[:NUM_QUERIES])
    qrels = {qid: rel for qid, rel in qrels.items() if qid in queries}
    name, pipe = f"st8-eval-{os.getpid()}", f"st8-eval-pipe-{os.getpid()}"
    osml.connect(opensearch_url, os_rerank_server.url, pipe, name=name)
    try:
        plain = search_through_pipeline(opensearch_url, os_scifact_index, None, queries, size=TOP_K,
                                        with_source=True, rank_scores=False)
        bm25, sources = plain.run, plain.sources
        through_os = search_through_pipeline(opensearch_url, os_scifact_index, pipe, queries, size=TOP_K).run
    finally:
        osml.delete(opensearch_url, pipe, name=name)
    for qid in queries:
        assert set(through_os[qid]) == set(bm25[qid])
    # the shared msearch-based BM25 (what `searchtune eval` runs) works on an opensearch-py client too
    shared_bm25, _ = bm25_search(opensearch_client(opensearch_url), os_scifact_index, queries, top_k=TOP_K)
    assert {q: list(r) for q, r in shared_bm25.items()} == {q: list(r) for q, r in bm25.items()}

    scorer = load_scorer(base_model_path, precision="fp32", max_length=MAX_LENGTH)
    sent = {did: Document(id=did, title="", text=src["title"] + src["text"]) for did, src in sources.items()}
    in_process = rerank_run(scorer, queries, bm25, sent, top_k=TOP_K)

    ndcg = {label: evaluate(qrels, run).aggregate["NDCG@10"]
            for label, run in {"bm25": bm25, "opensearch": through_os, "in_process": in_process}.items()}
    print(f"\nSciFact test, {len(queries)} queries, BM25 top-{TOP_K}: NDCG@10 {ndcg}")
    assert ndcg["opensearch"] == pytest.approx(ndcg["in_process"], abs=1e-3)
    assert ndcg["opensearch"] != pytest.approx(ndcg["bm25"], abs=1e-6)  # the pipeline did rerank
