"""The few index-admin calls vector builds make, for either client library.

elasticsearch-py 9 takes named body parts (``mappings=``, ``actions=``); opensearch-py takes one ``body=``. The
vectors package calls these instead of branching at every call site.
"""

from __future__ import annotations

from typing import Any


def is_opensearch(client) -> bool:
    return type(client).__module__.startswith("opensearchpy")


def bulk_helpers(client):
    """``streaming_bulk``/``scan`` of the client's own library (both have the same signatures)."""
    if is_opensearch(client):
        from opensearchpy import helpers
    else:
        from elasticsearch import helpers
    return helpers


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
