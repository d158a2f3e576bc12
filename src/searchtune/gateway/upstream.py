"""The connection pool to the cluster: aiohttp, because on the proxy path every request pays the client's own CPU
cost (about 0.5 ms per request for aiohttp against about 1.4 ms for httpx, measured here), and the gateway's
budget is under 2 ms in total. Bodies pass through raw: no decompression, no re-encoding of the URL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from searchtune.gateway.credentials import redact_url


class UpstreamError(Exception):
    """The cluster could not be reached or did not answer in time."""


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: Headers that are the gateway's own business and never go to the cluster (the admin key, see auth.py).
PRIVATE_HEADERS = frozenset({"x-searchtune-admin-key"})


class Upstream:
    """``base_url`` carries no credentials (credentials.py splits them off); ``authorization`` is the gateway's own,
    added to its own calls (:meth:`request_json`) and, with ``lend_credentials``, to client requests that have none."""

    def __init__(self, base_url: str, timeout_s: float = 120.0, connect_timeout_s: float = 10.0,
                 max_connections: int = 256, authorization: str | None = None, lend_credentials: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self._authorization = authorization
        self._lend = lend_credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s)
        self._max_connections = max_connections
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=60, ttl_dns_cache=300)
        # forward only the headers the client sent: no added Accept-Encoding, User-Agent or Content-Type
        self.session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=False,
                                             skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def request(self, method: str, path_and_query: str, headers: list[tuple[str, str]] | None = None,
                      body: bytes | None = None, as_gateway: bool = False) -> UpstreamResponse:
        """``path_and_query`` is sent exactly as given (already percent-encoded by the client). The gateway's
        credentials are added only to its own calls (``as_gateway``) or when lending was asked for, and only when
        the request carries none."""
        headers = [h for h in headers or [] if h[0].lower() not in PRIVATE_HEADERS]
        if self._authorization and (as_gateway or self._lend) and not any(
                h[0].lower() == "authorization" for h in headers):
            headers.append(("Authorization", self._authorization))
        url = URL(self.base_url + path_and_query, encoded=True)
        try:
            async with self.session.request(method, url, headers=headers, data=body or None,
                                            allow_redirects=False) as response:
                raw = await response.read()
                out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
                return UpstreamResponse(response.status, out_headers, raw)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UpstreamError(f"cluster {redact_url(self.base_url)} unreachable: {type(exc).__name__}: {exc}") from exc

    async def request_json(self, method: str, path_and_query: str, headers: dict[str, str] | None = None,
                           payload: Any = None) -> UpstreamResponse:
        """For the gateway's own calls (pipeline store): JSON in, plain (uncompressed) JSON out."""
        all_headers = [(k, v) for k, v in (headers or {}).items()]
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            all_headers.append(("Content-Type", "application/json"))
        return await self.request(method, path_and_query, all_headers, body, as_gateway=True)
