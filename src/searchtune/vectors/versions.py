"""Model versions as physical indices behind one alias: build beside, move the alias atomically, roll back.

Applications search the alias. A new model version's vectors go into a new physical index that nobody searches
until it is complete and verified; then one ``_aliases`` request removes the alias from the old index and adds it to
the new one (Elasticsearch applies the actions of one request atomically, so a search sees either index, never
neither). The old index stays, so rollback is the same single request in reverse. Each physical index records, in
its ``_meta``, the alias it serves and the index it replaced.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from searchtune.search.cluster import get_mapping, update_aliases

log = logging.getLogger(__name__)


class VersionError(RuntimeError):
    """An alias operation that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class IndexVersion:
    index: str
    live: bool
    model: str | None
    built_at: str | None
    previous: str | None
    docs: int | None


def physical_name(alias: str, model_id: str | None) -> str:
    """``{alias}-{model slug}-{utc time}-{ns}``: lowercase, only characters Elasticsearch allows."""
    slug = re.sub(r"[^a-z0-9]+", "-", (model_id or "bm25").lower()).strip("-")[:40] or "model"
    return f"{alias}-{slug}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{time.time_ns() % 1_000_000:06d}"


def live_index(client, alias: str) -> str | None:
    """The physical index behind ``alias`` (``alias`` itself for a plain index), ``None`` when nothing exists."""
    if client.indices.exists_alias(name=alias):
        targets = sorted(client.indices.get_alias(name=alias).keys())
        if len(targets) != 1:
            raise VersionError(f"alias '{alias}' points at {len(targets)} indices ({', '.join(targets)}); "
                               "searchtune manages aliases with exactly one index")
        return targets[0]
    return alias if client.indices.exists(index=alias) else None


def index_meta(client, index: str) -> dict:
    body = get_mapping(client, index)
    mapping = next(iter(body.values())).get("mappings") or {}
    return ((mapping.get("_meta") or {}).get("searchtune")) or {}


def move_alias(client, alias: str, new_index: str, delete_old: bool = False) -> str | None:
    """Point ``alias`` at ``new_index`` in one atomic request; return the index it pointed at before.

    A plain index that holds the alias's name (made before searchtune used aliases) can only be replaced by
    deleting it in the same request (``remove_index``), which happens only with ``delete_old``."""
    old = live_index(client, alias)
    actions: list[dict] = [{"add": {"index": new_index, "alias": alias}}]
    if old == alias:
        if not delete_old:
            raise VersionError(f"'{alias}' is a plain index, not an alias; rebuild it with `searchtune index "
                               f"--recreate` first (that replaces it by an alias)")
        actions.insert(0, {"remove_index": {"index": alias}})
    elif old and old != new_index:
        actions.insert(0, {"remove": {"index": old, "alias": alias}})
    update_aliases(client, actions)
    if delete_old and old and old not in (alias, new_index):
        client.indices.delete(index=old, ignore_unavailable=True)
    log.info("alias %s: %s -> %s", alias, old, new_index)
    return None if old == alias else old


def rollback(client, alias: str) -> str:
    """Move ``alias`` back to the index the live one replaced (recorded in its ``_meta``); return that index."""
    current = live_index(client, alias)
    if current is None or current == alias:
        raise VersionError(f"'{alias}' is not a searchtune alias; nothing to roll back")
    previous = index_meta(client, current).get("previous_index")
    if not previous:
        raise VersionError(f"index '{current}' (live behind '{alias}') records no previous version")
    if not client.indices.exists(index=previous):
        raise VersionError(f"the previous version '{previous}' of '{alias}' was deleted; cannot roll back")
    move_alias(client, alias, previous)
    return previous


def list_versions(client, alias: str) -> list[IndexVersion]:
    """Every physical index built for ``alias`` (its ``_meta.searchtune.alias``), newest first."""
    current = live_index(client, alias)
    mappings = get_mapping(client, f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
    rows = []
    for name, body in mappings.items():
        meta = ((body.get("mappings") or {}).get("_meta") or {}).get("searchtune") or {}
        if meta.get("alias") != alias:
            continue
        vectors = meta.get("vectors") or {}
        docs = client.count(index=name)["count"]
        rows.append(IndexVersion(index=name, live=name == current, model=(vectors.get("model") or {}).get("id"),
                                 built_at=vectors.get("built_at") or meta.get("built_at"),
                                 previous=meta.get("previous_index"), docs=int(docs)))
    return sorted(rows, key=lambda row: (row.built_at or "", row.index), reverse=True)


def prune(client, alias: str, keep: int = 2) -> list[str]:
    """Delete this alias's oldest physical indices beyond the newest ``keep`` (never the live one)."""
    versions = list_versions(client, alias)
    doomed = [v.index for v in versions[keep:] if not v.live]
    for name in doomed:
        client.indices.delete(index=name, ignore_unavailable=True)
    return doomed
