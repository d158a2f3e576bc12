"""What mining and training need from a first-stage search engine, as a protocol.

The data and training stages take a :class:`Retriever` instead of importing :mod:`searchtune.search`, so they do not
depend on which engine (or which client library) produced the candidates; the CLI and the quickstart build the
Elasticsearch/OpenSearch one (:class:`searchtune.search.retriever.BM25Retriever`). Any object with these methods
works: a test double over a fixed run, a dense index, another engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from searchtune.data.records import Document, Query

#: run[query_id][doc_id] = score
Run = dict[str, dict[str, float]]


class Retriever(Protocol):
    def check(self) -> None:
        """Raise ``LookupError`` with a one-line message when there is nothing to search (e.g. no such index)."""

    def describe(self) -> dict[str, Any]:
        """What identifies the candidates (index, fields): recorded in checkpoints and training cards."""

    def retrieve(self, queries: Mapping[str, Query], top_k: int, with_source: bool = False
                 ) -> tuple[Run, dict[str, Document]]:
        """Top-k (doc id, score) per query, and the retrieved documents by id when ``with_source``."""

    def best_score_among(self, wanted: Mapping[str, tuple[str, list[str]]]) -> dict[str, float]:
        """For ``{qid: (query text, doc ids)}``: the best score any of those documents gets for the query, on the
        same scale as :meth:`retrieve` (0.0 when none matches)."""
