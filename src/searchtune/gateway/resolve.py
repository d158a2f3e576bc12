"""Which default pipeline a search target gets, resolved the way the cluster resolves the target.

A default pipeline is set on a name: an index, an alias or a data stream (``PUT /_searchtune/default_pipeline/NAME``
or ``--default-pipeline NAME=PIPELINE``). Applications search aliases (``searchtune index`` creates one), wildcards
and comma lists, so matching the URL's text against those names would silently skip the rerank. Instead the gateway
asks the cluster (``GET /_resolve/index/TARGET``, with the caller's credentials, cached ``ttl`` seconds) which
concrete indices the search will read, and through which names. Each concrete index takes its own default, else the
one default of the alias or data stream it was reached through. When every index of the search ends up with the same
pipeline, that pipeline applies; when they differ or some have none, the search is proxied unchanged (OpenSearch,
with one index per search, behaves the same way for its ``index.search.default_pipeline``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from searchtune.gateway.upstream import Upstream, UpstreamError

#: concrete index -> the names (itself, aliases, data streams) through which the target reaches it
Targets = dict[str, set[str]]

_MAX_ENTRIES = 1024


def targets_from_resolve(answer: dict) -> Targets:
    """Parse ``_resolve/index``'s answer into :data:`Targets`."""
    targets: Targets = {}
    for index in answer.get("indices") or []:
        targets.setdefault(index["name"], set()).add(index["name"])
    for alias in answer.get("aliases") or []:
        for index in alias.get("indices") or []:
            targets.setdefault(index, set()).add(alias["name"])
    for stream in answer.get("data_streams") or []:
        for index in stream.get("backing_indices") or []:
            targets.setdefault(index, set()).add(stream["name"])
    return targets


def pipeline_for_targets(targets: Targets, defaults: Mapping[str, str]) -> str | None:
    """The one pipeline every concrete index of the search agrees on, else ``None``."""
    chosen: set[str] = set()
    for index, names in targets.items():
        pipeline = defaults.get(index)
        if pipeline is None:
            through = {defaults[name] for name in names if name in defaults}
            if len(through) != 1:
                return None  # no default, or aliases with different ones: nothing to agree on
            pipeline = through.pop()
        chosen.add(pipeline)
    return chosen.pop() if len(chosen) == 1 else None


class IndexResolver:
    """``_resolve/index`` answers, cached per (target, ``expand_wildcards``, credentials) for ``ttl`` seconds."""

    def __init__(self, upstream: Upstream, ttl: float = 1.0) -> None:
        self.upstream = upstream
        self.ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, Targets | None]] = {}

    async def targets(self, target: str, auth: Mapping[str, str], expand_wildcards: str | None = None
                      ) -> Targets | None:
        """``None`` when the cluster cannot resolve ``target`` (missing index, no rights, unreachable): the search
        then goes to the cluster unchanged and gets the cluster's own answer."""
        fingerprint = hashlib.sha256(repr(sorted(auth.items())).encode()).hexdigest()
        key = (target, expand_wildcards or "", fingerprint)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        query = "?" + urlencode({"expand_wildcards": expand_wildcards}) if expand_wildcards else ""
        try:
            response = await self.upstream.request_json("GET", f"/_resolve/index/{quote(target, safe=',*')}{query}",
                                                        dict(auth))
            found = targets_from_resolve(response.json()) if response.status == 200 else None
        except (UpstreamError, ValueError, KeyError, TypeError):
            found = None
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (now, found)
        return found


async def default_pipeline(target: str, defaults: Mapping[str, str], resolver: IndexResolver,
                           auth: Mapping[str, str], expand_wildcards: str | None = None) -> str | None:
    """The default pipeline of a search on ``target`` (``""``: every index). A default set on the target's exact
    text wins; otherwise the cluster's resolution decides (:func:`pipeline_for_targets`)."""
    if not defaults:
        return None  # no defaults anywhere: no need to ask the cluster
    if target in defaults:
        return defaults[target]
    targets = await resolver.targets(target or "_all", auth, expand_wildcards)
    return pipeline_for_targets(targets, defaults) if targets else None
