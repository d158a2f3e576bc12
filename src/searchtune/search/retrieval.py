"""First-stage BM25 retrieval through the cluster (Elasticsearch or OpenSearch client), batched with ``msearch``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from searchtune.data.records import Document, Query
from searchtune.search.client import msearch

#: run[query_id][doc_id] = score
Run = dict[str, dict[str, float]]

DEFAULT_FIELDS = ("title", "text")


def parse_fields(spec: str | None) -> list[str]:
    """``"title^2,text"`` -> ``["title^2", "text"]``."""
    if not spec:
        return list(DEFAULT_FIELDS)
    return [field.strip() for field in spec.split(",") if field.strip()]


def bm25_query(text: str, fields: list[str]) -> dict:
    return {"multi_match": {"query": text, "fields": fields, "type": "best_fields"}}


def bm25_search(client: Any, index: str, queries: Mapping[str, Query], fields: list[str] | None = None,
                top_k: int = 100, batch_size: int = 32, with_source: bool = False,
                on_progress: Callable[[int], None] | None = None) -> tuple[Run, dict[str, Document]]:
    """BM25 top-k per query. Returns the run and, when ``with_source``, the retrieved documents by id."""
    fields = fields or list(DEFAULT_FIELDS)
    run: Run = {}
    docs: dict[str, Document] = {}
    items = list(queries.items())
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        searches: list[dict] = []
        for _, query in batch:
            searches.append({"index": index})
            body: dict = {"query": bm25_query(query.text, fields), "size": top_k, "track_total_hits": False}
            body["_source"] = ["id", "title", "text"] if with_source else False
            searches.append(body)
        response = msearch(client, searches)
        for (qid, _), result in zip(batch, response["responses"]):
            if "error" in result:
                raise RuntimeError(f"search failed for query {qid}: {result['error']}")
            hits = result["hits"]["hits"]
            run[qid] = {hit["_id"]: float(hit["_score"]) for hit in hits}
            if with_source:
                for hit in hits:
                    src = hit.get("_source") or {}
                    docs[hit["_id"]] = Document(id=hit["_id"], title=src.get("title", ""), text=src.get("text", ""))
        if on_progress:
            on_progress(len(batch))
    return run, docs
