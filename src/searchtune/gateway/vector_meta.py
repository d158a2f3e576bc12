"""Which vectors an index holds, read from its mapping's ``_meta`` and cached briefly per name.

The hybrid processor needs the vector field, its dimension and the model identity before it may run a kNN search.
A name may be an alias whose target moves (a model promotion): every cached entry names the physical index it was
read from, and the processor re-reads when a kNN hit comes from another one, so a promotion is noticed on the
first search that sees it, not after the cache expires.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from searchtune.gateway.upstream import Upstream
from searchtune.vectors.mapping import read_vector_meta


@dataclass(frozen=True)
class IndexVectors:
    physical: str
    meta: dict[str, Any]


class VectorMetaCache:
    def __init__(self, upstream: Upstream, ttl_s: float = 5.0) -> None:
        self.upstream, self.ttl_s = upstream, ttl_s
        self._entries: dict[str, tuple[float, IndexVectors | None]] = {}
        self._product: str | None = None

    async def get(self, name: str, auth: dict[str, str], fresh: bool = False) -> IndexVectors | None:
        """The vectors behind ``name`` (``None``: no vectors, several indices, or the mapping is unreadable)."""
        now = time.monotonic()
        cached = self._entries.get(name)
        if cached and not fresh and now - cached[0] < self.ttl_s:
            return cached[1]
        response = await self.upstream.request_json("GET", f"/{quote(name, safe=',*')}/_mapping", auth)
        entry = None
        if response.status == 200:
            body = response.json()
            meta = read_vector_meta(body)
            if meta is not None:
                entry = IndexVectors(physical=next(iter(body)), meta=meta)
        self._entries[name] = (now, entry)
        return entry

    async def product(self, auth: dict[str, str]) -> str:
        """``opensearch`` or ``elasticsearch`` (their kNN searches are spelled differently); asked once."""
        if self._product is None:
            response = await self.upstream.request_json("GET", "/", auth)
            distribution = ""
            if response.status == 200:
                info = response.json()
                distribution = (info.get("version") or {}).get("distribution", "") if isinstance(info, dict) else ""
            self._product = "opensearch" if distribution == "opensearch" else "elasticsearch"
        return self._product
