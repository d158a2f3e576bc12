"""Fill a new physical index with documents and their vectors, then move the alias to it.

Embedding (CPU- or GPU-bound, in torch or behind an HTTP endpoint) and bulk indexing (network plus the cluster's
HNSW build) run in two threads joined by a small queue, so the model never waits for the cluster; the throughput of
a build is therefore close to the model's raw embedding throughput (benchmarks/hybrid_scifact.py measures both).
Nothing is searchable until the index is complete and its document count verified; any failure deletes the
half-built index and leaves the alias where it was.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from searchtune.data.records import Document
from searchtune.search.indexing import DEFAULT_ANALYZER, index_mapping
from searchtune.search.cluster import (bulk_helpers, bulk_index, create_index, finish_index, get_mapping,
                                      is_opensearch)
from searchtune.vectors.embedders import Embedder
from searchtune.vectors.mapping import DEFAULT_QUANTIZATION, DEFAULT_VECTOR_FIELD, Quantization, VectorSpec, with_vectors
from searchtune.vectors.versions import index_meta, live_index, move_alias, physical_name

log = logging.getLogger(__name__)

_DONE = object()


@dataclass
class BuildResult:
    index: str
    alias: str
    count: int
    seconds: float
    previous: str | None
    spec: VectorSpec

    @property
    def docs_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def vector_spec(embedder: Embedder, field: str = DEFAULT_VECTOR_FIELD,
                quantization: Quantization = DEFAULT_QUANTIZATION) -> VectorSpec:
    return VectorSpec(field=field, dims=embedder.dims, similarity=embedder.similarity, model=embedder.identity,
                      quantization=quantization, max_length=embedder.max_length)


def build_vector_index(client, alias: str, documents: Iterable[Document], embedder: Embedder, *,
                       total: int | None = None, field: str = DEFAULT_VECTOR_FIELD,
                       quantization: Quantization = DEFAULT_QUANTIZATION, analyzer: str = DEFAULT_ANALYZER,
                       embed_batch: int = 128, chunk_size: int = 256, replace_plain: bool = False,
                       on_progress: Callable[[int], None] | None = None) -> BuildResult:
    """Index ``documents`` (id/title/text) with one vector each into a new physical index behind ``alias``."""
    sources = ({"id": d.id, "title": d.title, "text": d.text} for d in documents)
    return _build(client, alias, sources, embedder, base_mapping=index_mapping(analyzer), total=total, field=field,
                  quantization=quantization, embed_batch=embed_batch, chunk_size=chunk_size,
                  replace_plain=replace_plain, on_progress=on_progress)


def update_vectors(client, alias: str, embedder: Embedder, *, field: str | None = None,
                   quantization: Quantization = DEFAULT_QUANTIZATION, embed_batch: int = 128, chunk_size: int = 256,
                   on_progress: Callable[[int], None] | None = None) -> BuildResult:
    """Re-embed the documents behind ``alias`` with another model: a copy of the live index's mapping and sources
    (its old vectors left out) plus the new vectors, built beside it; the alias moves when it is complete."""
    live = live_index(client, alias)
    if live is None:
        raise LookupError(f"no index or alias '{alias}'")
    mapping = next(iter(get_mapping(client, live).values()))["mappings"]
    old_field = (index_meta(client, live).get("vectors") or {}).get("field")
    field = field or old_field or DEFAULT_VECTOR_FIELD
    properties = {k: v for k, v in mapping.get("properties", {}).items()
                  if k not in (old_field, field) and v.get("type") not in ("dense_vector", "knn_vector")}
    base = {**{k: v for k, v in mapping.items() if k != "_meta"}, "properties": properties}
    total = int(client.count(index=live)["count"])
    hits = bulk_helpers(client).scan(client, index=live, query={"query": {"match_all": {}}}, size=500, preserve_order=False,
                        _source_excludes=[f for f in (old_field, field) if f])
    sources = ({**hit["_source"], "id": hit["_source"].get("id", hit["_id"])} for hit in hits)
    return _build(client, alias, sources, embedder, base_mapping=base, total=total, field=field,
                  quantization=quantization, embed_batch=embed_batch, chunk_size=chunk_size, replace_plain=False,
                  on_progress=on_progress)


def _build(client, alias: str, sources: Iterable[dict[str, Any]], embedder: Embedder, *, base_mapping: dict,
           total: int | None, field: str, quantization: Quantization, embed_batch: int, chunk_size: int,
           replace_plain: bool, on_progress: Callable[[int], None] | None) -> BuildResult:
    spec = vector_spec(embedder, field, quantization)
    previous = live_index(client, alias)
    concrete = physical_name(alias, embedder.identity.id)
    opensearch = is_opensearch(client)
    mapping = with_vectors(base_mapping, spec, opensearch)
    mapping["_meta"]["searchtune"].update(alias=alias, previous_index=previous if previous != alias else None,
                                          built_at=spec.meta()["built_at"])
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"}
    if opensearch:
        settings["knn"] = True
    create_index(client, concrete, mapping, settings)
    started = time.perf_counter()
    try:
        sent = _bulk_with_vectors(client, concrete, sources, embedder, field, embed_batch, chunk_size, on_progress)
        count = finish_index(client, concrete, total if total is not None else sent)
        seconds = time.perf_counter() - started
        old = move_alias(client, alias, concrete, delete_old=replace_plain and previous == alias)
    except BaseException:
        client.indices.delete(index=concrete, ignore_unavailable=True)
        raise
    log.info("indexed %d documents with %s vectors into %s (alias %s) in %.1fs", count, spec.model.id, concrete,
             alias, seconds)
    return BuildResult(index=concrete, alias=alias, count=count, seconds=seconds, previous=old, spec=spec)


def _bulk_with_vectors(client, index: str, sources: Iterable[dict[str, Any]], embedder: Embedder, field: str,
                       embed_batch: int, chunk_size: int, on_progress) -> int:
    """Embed in a background thread, bulk-index in this one; the first error of either side is raised here."""
    batches: queue.Queue = queue.Queue(maxsize=4)
    failure: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            batch: list[dict[str, Any]] = []
            for source in sources:
                batch.append(source)
                if len(batch) >= embed_batch:
                    _put(batches, _embedded(batch, embedder, field), stop)
                    batch = []
            if batch:
                _put(batches, _embedded(batch, embedder, field), stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            failure.append(exc)
        finally:
            _put(batches, _DONE, stop)

    def actions() -> Iterator[dict[str, Any]]:
        while (item := batches.get()) is not _DONE:
            for source in item:
                yield {"_index": index, "_id": source["id"], "_source": source}
        if failure:
            raise failure[0]

    worker = threading.Thread(target=produce, name="embed-for-index", daemon=True)
    worker.start()
    try:
        return bulk_index(client, actions(), chunk_size, on_progress)
    finally:
        stop.set()
        worker.join(timeout=30)


def _embedded(batch: list[dict[str, Any]], embedder: Embedder, field: str) -> list[dict[str, Any]]:
    texts = [Document(id=str(s["id"]), title=str(s.get("title") or ""), text=str(s.get("text") or "")).full_text
             for s in batch]
    vectors = embedder.embed(texts)
    for source, vector in zip(batch, vectors.tolist()):
        source[field] = vector
    return batch


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    """Block until there is room, unless the consumer gave up (then drop: nobody reads any more)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue
