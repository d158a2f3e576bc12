"""The gateway's pipelines index is its own: clients may not read, write, search or delete it through the gateway,
by name, wildcard, alias, date math or inside a body (``_bulk``, ``_mget``, ``_msearch``, ``_aliases``, ``_reindex``,
SQL/ES|QL text). Pipelines are changed only through the pipeline API, which checks rights (auth.py), validates and
keeps secrets out (secrets.py); a document written into the index directly would skip all of that.

What is matched, for each index expression of a request (comma-separated, ``-exclusions`` ignored):

* the index's name or an alias of it (aliases are read from the cluster every few seconds, since one could be
  created on the cluster directly; creating one through the gateway is refused), literally or through date math
  (``<searchtune-pipelines>``);
* a wildcard (``*``, ``_all``, ``searchtune-*``) that matches an alias of it, or that matches the index itself when
  hidden indices are expanded (``expand_wildcards=all|hidden``): the index is hidden, so plain wildcards skip it;
* no index at all (``GET /_search``) with hidden indices expanded, on the APIs that read documents.

A refusal is a 403 ``security_exception`` (ES-shaped, counted in ``/metrics`` as kind ``refused``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import zlib
from collections.abc import Iterable
from urllib.parse import parse_qs

from searchtune.gateway.upstream import Upstream, UpstreamError

#: APIs that read documents of every index when no index is named.
_DATA_ROOTS = {"_search", "_count", "_msearch", "_async_search", "_field_caps", "_validate", "_pit", "_mget",
               "_update_by_query", "_delete_by_query", "_terms_enum", "_knn_search", "_rank_eval", "_mtermvectors",
               "_eql", "_sql", "_query", "_esql"}
#: NDJSON/JSON bodies naming indices per item; inspected item by item, so document text never matters.
_ITEM_BODIES = {"_bulk", "_mget", "_msearch", "_mtermvectors"}
_INDEX_KEYS = ("_index", "index", "indices")
#: Cluster-level APIs whose bodies hold queries, not index names: their text is not scanned for the index's name
#: (a search for the words "searchtune-pipelines" is an ordinary search).
_QUERY_ROOTS = {"_search", "_count", "_async_search", "_validate", "_field_caps", "_terms_enum", "_knn_search",
                "_pit", "_render", "_scripts"}


class ProtectedIndex:
    """The name of the pipelines index and the aliases currently pointing at it."""

    def __init__(self, name: str) -> None:
        self.name = name.lower()
        self.aliases: frozenset[str] = frozenset()

    def _names(self) -> Iterable[str]:
        return (self.name, *self.aliases)

    def hit(self, expression: str, hidden: bool, concrete: bool = False) -> bool:
        """Does an index expression reach the index? ``hidden``: hidden indices expanded by wildcards;
        ``concrete``: the API takes no wildcards (a wildcard character there is a literal name)."""
        for part in expression.lower().split(","):
            part = part.strip()
            if not part or part.startswith("-") or ":" in part:
                continue
            if part.startswith("<") and part.endswith(">"):  # date math resolves to one concrete name
                pattern = re.sub(r"\{[^}]*\}+", "*", part[1:-1])
                if any(fnmatch.fnmatchcase(n, pattern) for n in self._names()):
                    return True
                continue
            if part == "_all":
                part = "*"
            if "*" in part and not concrete:
                if any(fnmatch.fnmatchcase(a, part) for a in self.aliases):
                    return True
                if hidden and fnmatch.fnmatchcase(self.name, part):
                    return True
            elif part in self._names():
                return True
        return False

    def mentioned_in(self, text: bytes) -> bool:
        lowered = text.lower()
        return any(n.encode() in lowered for n in self._names())


def _hidden(value: str | list | None) -> bool:
    values = value if isinstance(value, list) else [value or ""]
    return any(w.strip() in ("all", "hidden") for v in values for w in str(v).split(","))


def decoded_body(body: bytes, encoding: str, limit: int) -> bytes | None:
    """The body as the cluster will read it (gzip/deflate undone, at most ``limit`` bytes); None if it cannot be."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        return None
    try:
        inflater = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        return None
    return out if len(out) <= limit else None


def _item_hits(protected: ProtectedIndex, body: bytes, api: str) -> bool:
    """Index names in the items of a ``_bulk``/``_mget``/``_msearch``/``_mtermvectors`` body."""
    if api != "_msearch" and not protected.mentioned_in(body):  # these take no wildcards: a name must appear
        return False
    lines = body.split(b"\n") if api in ("_bulk", "_msearch") else [body]
    if api == "_msearch":
        lines = [line for line in lines if line.strip()][0::2]  # header lines only
    for line in lines:
        if api == "_bulk" and not protected.mentioned_in(line):
            continue
        try:
            item = json.loads(line) if line.strip() else None
        except ValueError:
            continue  # the cluster refuses it
        for node in _index_holders(item):
            for key in _INDEX_KEYS:
                value = node.get(key)
                names = value if isinstance(value, list) else [value]
                hidden = _hidden(node.get("expand_wildcards"))
                if any(isinstance(n, str) and protected.hit(n, hidden, concrete=api != "_msearch") for n in names):
                    return True
    return False


def _index_holders(node) -> Iterable[dict]:
    """Every object of a JSON value (the objects that may carry ``_index``/``index``/``indices``)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _index_holders(value)
    elif isinstance(node, list):
        for value in node:
            yield from _index_holders(value)


def refusal_reason(protected: ProtectedIndex, method: str, path: str, query_string: str, body: bytes | None
                   ) -> str | None:
    """Why this request may not go on (None: it may). ``body``: the decoded body (None: it cannot be decoded)."""
    parts = [p for p in path.split("/") if p]
    query = parse_qs(query_string, keep_blank_values=True)
    hidden = _hidden(query.get("expand_wildcards"))
    what = f"the gateway's pipelines index [{protected.name}] is reserved: use the /_search/pipeline API"
    if parts and not parts[0].startswith("_"):
        if protected.hit(parts[0], hidden):
            return what
    elif parts and parts[0] == "_all":
        if protected.hit("*", hidden):
            return what
    elif parts and parts[0] in _DATA_ROOTS and hidden:
        return what + " (expand_wildcards reaches hidden indices)"
    if body == b"" or method == "HEAD":
        return None
    api = next((p for p in reversed(parts) if p in _ITEM_BODIES), None)
    if body is None:  # compressed past the limit, or an encoding we cannot read: what it names is unknown
        return what + " (this body's encoding cannot be checked)" if api or (parts and parts[0].startswith("_")) else None
    if api is not None:
        return what if _item_hits(protected, body, api) else None
    if parts and parts[0].startswith("_") and parts[0] not in _QUERY_ROOTS:
        if protected.mentioned_in(body):  # _aliases, _reindex, _sql, _query, _restore...: any mention is refused
            return what
        if parts[0] in ("_aliases", "_reindex") and _wildcard_hits(protected, body):
            return what
    return None


def _wildcard_hits(protected: ProtectedIndex, body: bytes) -> bool:
    """A wildcard under ``index``/``indices`` of an ``_aliases`` or ``_reindex`` body that could reach the index
    (hidden or not: these APIs resolve wildcards in their own way, so any match is refused)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    for node in _index_holders(payload):
        for key in _INDEX_KEYS:
            value = node.get(key)
            for name in value if isinstance(value, list) else [value]:
                if isinstance(name, str) and protected.hit(name, hidden=True):
                    return True
    return False


async def watch_aliases(protected: ProtectedIndex, upstream: Upstream, interval_s: float = 2.0) -> None:
    """Keep ``protected.aliases`` current (an alias can be added on the cluster directly). Runs until cancelled."""
    while True:
        try:
            response = await upstream.request_json("GET", f"/{protected.name}/_alias?expand_wildcards=all")
            if response.status == 200:
                aliases = {a for entry in response.json().values() for a in (entry.get("aliases") or {})}
                protected.aliases = frozenset(a.lower() for a in aliases)
        except (UpstreamError, ValueError, AttributeError):
            pass  # keep the last known set; the next round tries again
        await asyncio.sleep(interval_s)
