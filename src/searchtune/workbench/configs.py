"""Search configurations the workbench compares: the cluster's own BM25 and every search pipeline of the gateway.

Each is an ordinary search over HTTP (eval/pipeline_run.py, the same call eval makes): BM25 straight to the cluster,
a pipeline through ``{gateway}/{index}/_search?search_pipeline=NAME``. The workbench never imports the gateway or
the model server, so what it shows is exactly what an application gets, fallbacks included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from searchtune.data.records import Query
from searchtune.eval.pipeline_run import search_through_pipeline

log = logging.getLogger(__name__)

BM25 = "bm25"


@dataclass(frozen=True)
class Hit:
    doc_id: str
    title: str
    snippet: str


@dataclass
class Ranking:
    """One configuration's answer to one query (``error`` set instead of hits when the search failed)."""

    config: str
    hits: list[Hit] = field(default_factory=list)
    error: str | None = None


@dataclass
class SearchTargets:
    """Where searches go: the cluster, its index, the gateway (optional) and the fields BM25 matches."""

    es_url: str
    index: str
    gateway_url: str | None = None
    fields: str = "title,text"
    timeout_s: float = 60.0

    def configs(self) -> list[str]:
        """``bm25`` plus each pipeline the gateway knows (its definitions are listed, secrets redacted)."""
        if not self.gateway_url:
            return [BM25]
        try:
            response = httpx.get(f"{self.gateway_url.rstrip('/')}/_search/pipeline", timeout=10.0)
            response.raise_for_status()
            return [BM25, *sorted(response.json())]
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot list the gateway's pipelines: %s", exc)
            return [BM25]

    def search(self, config: str, queries: dict[str, Query], size: int = 10) -> dict[str, Ranking]:
        """Top ``size`` of ``config`` for every query (one search per query, as an application makes them)."""
        if config != BM25 and not self.gateway_url:
            return {qid: Ranking(config, error="no --gateway given") for qid in queries}
        url = self.es_url if config == BM25 else self.gateway_url
        try:
            result = search_through_pipeline(url, self.index, None if config == BM25 else config, queries,
                                             fields=self.fields, size=size, timeout=self.timeout_s, with_source=True)
        except httpx.HTTPError as exc:
            return {qid: Ranking(config, error=f"{type(exc).__name__}: {exc}") for qid in queries}
        rankings = {}
        for qid in queries:
            if qid in result.errors:
                rankings[qid] = Ranking(config, error=result.errors[qid])
                continue
            hits = [_hit(did, result.sources.get(did) or {}) for did in result.run.get(qid, {})]
            rankings[qid] = Ranking(config, hits=hits)
        return rankings


def _hit(doc_id: str, source: dict) -> Hit:
    text = str(source.get("text") or "")
    return Hit(doc_id=doc_id, title=str(source.get("title") or ""),
               snippet=text[:280] + ("…" if len(text) > 280 else ""))
