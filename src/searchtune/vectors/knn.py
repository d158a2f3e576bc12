"""Building the two searches of a hybrid query from the application's unchanged search body, as pure functions.

The BM25 side is the application's own query asked for the fusion window; the kNN side is a top-level ``knn``
search (Elasticsearch; ``dense_vector`` kNN needs no paid licence) or a ``knn`` query (OpenSearch's k-NN plugin).
A ``bool`` query's ``filter`` and ``must_not`` clauses restrict *which* documents may match without scoring them,
so the kNN side gets them too: a hybrid search never returns a document the application's filters exclude.
"""

from __future__ import annotations

import copy
from typing import Any

#: Search-body keys that shape what each hit carries; both sides get them so fused hits look like ordinary ones.
_HIT_SHAPE_KEYS = ("_source", "fields", "docvalue_fields", "stored_fields", "highlight")


def knn_filter(query: dict[str, Any] | None) -> dict[str, Any] | None:
    """The non-scoring restrictions of ``query`` as one filter for the kNN side, ``None`` when there are none.

    A top-level ``bool`` carries filters apart from its scoring clauses, and ``constant_score`` is one filter; any
    other query restricts nothing beyond what it scores (the kNN side then searches every document)."""
    if not isinstance(query, dict):
        return None
    if "constant_score" in query and isinstance(query["constant_score"], dict):
        inner = query["constant_score"].get("filter")
        return {"bool": {"filter": _as_list(inner)}} if inner else None
    bool_query = query.get("bool")
    if not isinstance(bool_query, dict):
        return None
    filters = _as_list(bool_query.get("filter"))
    excluded = _as_list(bool_query.get("must_not"))
    if not filters and not excluded:
        return None
    clause: dict[str, Any] = {}
    if filters:
        clause["filter"] = filters
    if excluded:
        clause["must_not"] = excluded
    return {"bool": clause}


def bm25_body(body: dict[str, Any], window: int) -> dict[str, Any]:
    """The application's search for the first ``window`` hits (paging is applied after fusion)."""
    side = copy.deepcopy(body)
    side.pop("from", None)
    side["size"] = window
    side.pop("knn", None)
    return side


def es_knn_body(body: dict[str, Any], vector: list[float], field: str, k: int, num_candidates: int) -> dict[str, Any]:
    """Elasticsearch top-level ``knn`` search with the application's filters and hit shape."""
    knn: dict[str, Any] = {"field": field, "query_vector": vector, "k": k, "num_candidates": max(num_candidates, k)}
    restriction = knn_filter(body.get("query"))
    if restriction:
        knn["filter"] = restriction
    side: dict[str, Any] = {"knn": knn, "size": k}
    side.update({key: copy.deepcopy(body[key]) for key in _HIT_SHAPE_KEYS if key in body and key != "highlight"})
    side["track_total_hits"] = False
    return side


def opensearch_knn_body(body: dict[str, Any], vector: list[float], field: str, k: int) -> dict[str, Any]:
    """OpenSearch k-NN plugin ``knn`` query (efficient filtering with the lucene/faiss engines)."""
    inner: dict[str, Any] = {"vector": vector, "k": k}
    restriction = knn_filter(body.get("query"))
    if restriction:
        inner["filter"] = restriction
    side: dict[str, Any] = {"query": {"knn": {field: inner}}, "size": k}
    side.update({key: copy.deepcopy(body[key]) for key in _HIT_SHAPE_KEYS if key in body and key != "highlight"})
    return side


def hits_ranked(response: dict[str, Any]) -> list[tuple[str, float]]:
    """``(id, score)`` of a search answer's hits, in the cluster's order."""
    return [(hit["_id"], float(hit.get("_score") or 0.0)) for hit in response.get("hits", {}).get("hits", [])]


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return [copy.deepcopy(v) for v in (value if isinstance(value, list) else [value])]
