"""The BM25 :class:`searchtune.data.retriever.Retriever` over an Elasticsearch or OpenSearch index, batched with
``msearch``: what the CLI and the quickstart hand to mining and training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from searchtune.data.records import Document, Query
from searchtune.search.client import msearch
from searchtune.search.retrieval import DEFAULT_FIELDS, Run, bm25_query, bm25_search


class BM25Retriever:
    def __init__(self, client: Any, index: str, fields: list[str] | None = None, batch_size: int = 32) -> None:
        self.client = client
        self.index = index
        self.fields = list(fields or DEFAULT_FIELDS)
        self.batch_size = batch_size

    def check(self) -> None:
        if not self.client.indices.exists(index=self.index):
            raise LookupError(f"index '{self.index}' does not exist on the cluster; create it with `searchtune index "
                              f"DATASET --index {self.index}`")

    def describe(self) -> dict[str, Any]:
        return {"index": self.index, "fields": self.fields}

    def retrieve(self, queries: Mapping[str, Query], top_k: int, with_source: bool = False
                 ) -> tuple[Run, dict[str, Document]]:
        return bm25_search(self.client, self.index, queries, fields=self.fields, top_k=top_k,
                           batch_size=self.batch_size,
                           with_source=with_source)

    def best_score_among(self, wanted: Mapping[str, tuple[str, list[str]]]) -> dict[str, float]:
        """The same BM25 query restricted to the given ids (an exact score, not an estimate)."""
        if not wanted:
            return {}
        searches: list[dict] = []
        order = list(wanted)
        for qid in order:
            text, ids = wanted[qid]
            searches.append({"index": self.index})
            searches.append({"query": {"bool": {"must": bm25_query(text, self.fields),
                                                "filter": {"ids": {"values": ids}}}},
                             "size": len(ids), "_source": False, "track_total_hits": False})
        response = msearch(self.client, searches)
        scores: dict[str, float] = {}
        for qid, result in zip(order, response["responses"]):
            if "error" in result:
                raise RuntimeError(f"positive-score search failed for query {qid}: {result['error']}")
            scores[qid] = max((float(h["_score"]) for h in result["hits"]["hits"]), default=0.0)
        return scores
