"""The few index-admin and bulk calls index builds make, for either client library.

elasticsearch-py 9 takes named body parts (``mappings=``, ``actions=``); opensearch-py takes one ``body=``. Index
builds (text-only and with vectors) call these instead of branching at every call site.
"""

from __future__ import annotations

from typing import Any

from searchtune.search.client import bulk_helpers, is_opensearch  # noqa: F401 - re-exported for index builds


def create_index(client, name: str, mappings: dict[str, Any], settings: dict[str, Any]) -> None:
    if is_opensearch(client):
        client.indices.create(index=name, body={"mappings": mappings, "settings": settings})
    else:
        client.indices.create(index=name, mappings=mappings, settings=settings)


def put_settings(client, index: str, settings: dict[str, Any]) -> None:
    if is_opensearch(client):
        client.indices.put_settings(index=index, body=settings)
    else:
        client.indices.put_settings(index=index, settings=settings)


def update_aliases(client, actions: list[dict[str, Any]]) -> None:
    if is_opensearch(client):
        client.indices.update_aliases(body={"actions": actions})
    else:
        client.indices.update_aliases(actions=actions)


def get_mapping(client, index: str, **options) -> dict[str, Any]:
    """``GET index/_mapping`` as a plain dict (elasticsearch-py answers an ObjectApiResponse)."""
    return dict(client.indices.get_mapping(index=index, **options))


def bulk_index(client, actions, chunk_size: int = 500, on_progress=None) -> int:
    """Stream ``actions`` through the bulk API (transient faults retried); the first refused document raises."""
    sent = 0
    for ok, item in bulk_helpers(client).streaming_bulk(client, actions, chunk_size=chunk_size, raise_on_error=False,
                                                        max_retries=3):
        if not ok:
            raise RuntimeError(f"bulk indexing failed: {item}")
        sent += 1
        if on_progress:
            on_progress(1)
    return sent


def finish_index(client, index: str, expected: int) -> int:
    """Turn refresh back on, refresh, and check the document count (a short index is never made searchable)."""
    put_settings(client, index, {"refresh_interval": "1s"})
    client.indices.refresh(index=index)
    count = int(client.count(index=index)["count"])
    if count != expected:
        raise RuntimeError(f"index '{index}' holds {count} documents, expected {expected}")
    return count
