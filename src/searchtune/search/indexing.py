"""Load a corpus into an index safely: build a new concrete index, then move the alias to it.

The name users search (``--index NAME``) is an alias. Rebuilding (``--recreate``) fills a fresh concrete index and
swaps the alias atomically, so a failed or interrupted load never leaves the live index half-written or empty.
Works with an elasticsearch-py or an opensearch-py client (:func:`searchtune.search.client.search_client`): request
bodies go as ``body=``, which both accept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from searchtune.data.records import Document
from searchtune.search import DEFAULT_ANALYZER
from searchtune.search.cluster import bulk_index, create_index, finish_index, update_aliases

log = logging.getLogger(__name__)



class IndexExistsError(RuntimeError):
    pass


def index_mapping(analyzer: str = DEFAULT_ANALYZER) -> dict:
    """Explicit mapping: ``id`` keyword, ``title`` and ``text`` full-text with the configured analyzer."""
    return {
        "dynamic": "strict",
        "properties": {
            "id": {"type": "keyword"},
            "title": {"type": "text", "analyzer": analyzer},
            "text": {"type": "text", "analyzer": analyzer},
        },
    }


def index_exists(client: Any, name: str) -> bool:
    return bool(client.indices.exists(index=name))


def build_index(client: Any, name: str, documents: Iterable[Document], total: int | None = None,
                recreate: bool = False, analyzer: str = DEFAULT_ANALYZER, chunk_size: int = 500,
                on_progress: Callable[[int], None] | None = None) -> int:
    """Index ``documents`` under alias ``name``; return the document count verified after refresh."""
    if index_exists(client, name) and not recreate:
        raise IndexExistsError(f"index '{name}' already exists at {_cluster_url(client)}; pass --recreate to rebuild it "
                               "(the old index stays live until the new one is complete)")
    if client.indices.exists(index=name) and not client.indices.exists_alias(name=name):
        # a plain index (not made by us) holds the name: it can only be replaced by deleting it first
        old_concrete = [name]
    else:
        old_concrete = list(client.indices.get_alias(name=name).keys()) if client.indices.exists_alias(name=name) else []
    concrete = f"{name}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 1_000_000:06d}"
    create_index(client, concrete, index_mapping(analyzer),
                 {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"})
    try:
        actions = ({"_index": concrete, "_id": d.id, "_source": {"id": d.id, "title": d.title, "text": d.text}}
                   for d in documents)
        sent = bulk_index(client, actions, chunk_size, on_progress)
        count = finish_index(client, concrete, total if total is not None else sent)
    except BaseException:
        client.indices.delete(index=concrete, ignore_unavailable=True)
        raise
    actions_alias: list[dict] = [{"add": {"index": concrete, "alias": name}}]
    if old_concrete == [name]:
        actions_alias.insert(0, {"remove_index": {"index": name}})
    else:
        actions_alias += [{"remove": {"index": old, "alias": name}} for old in old_concrete]
    update_aliases(client, actions_alias)
    for old in old_concrete:
        if old != name:
            client.indices.delete(index=old, ignore_unavailable=True)
    log.info("indexed %d documents into %s (alias %s)", count, concrete, name)
    return count


def _cluster_url(client: Any) -> str:
    try:
        node = client.transport.node_pool.get()
        return str(node.base_url)
    except Exception:  # pragma: no cover - cosmetic only
        return "the cluster"
