"""Compressed request bodies, decoded before the gateway reads them.

elasticsearch-py with ``http_compress=True`` gzips every request body (``Content-Encoding: gzip``). Plain proxying
forwards such bodies raw (the cluster decodes them), but the requests the gateway reads itself (pipeline searches,
``_msearch``, pipeline admin) must be decoded first, or a compressed pipeline search is a 400 and a compressed
``_msearch`` silently skips its pipelines. This ASGI wrapper sits in front of the gateway's own routes: handlers see
the plain body and no ``Content-Encoding``; whatever they forward is sent uncompressed. The decoded size is capped,
so a small "zip bomb" cannot exhaust the gateway's memory.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Receive, Scope, Send

from searchtune.asgi_body import replay
from searchtune.gateway.proxy import es_error

#: Largest decoded body accepted (Elasticsearch's own default ``http.max_content_length`` is 100 MiB).
MAX_DECODED_BYTES = 100 * 1024 * 1024

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class BodyTooLarge(ValueError):
    pass


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """Decode one coding (every member of a multi-member gzip stream), refusing output beyond ``limit`` bytes."""
    out = bytearray()
    while data:
        decoder = zlib.decompressobj(wbits)
        out += decoder.decompress(data, limit + 1 - len(out))
        if len(out) > limit or decoder.unconsumed_tail:
            raise BodyTooLarge(f"the decoded request body is over {limit} bytes")
        if not decoder.eof:
            raise zlib.error("truncated compressed data")
        data = decoder.unused_data.lstrip(b"\0")
    return bytes(out)


def decode_body(body: bytes, content_encoding: str, limit: int = MAX_DECODED_BYTES) -> bytes:
    """``body`` with its ``Content-Encoding`` (``gzip``, ``x-gzip``, ``deflate``, ``identity``; a comma list is
    applied in order, so it is undone in reverse) removed. Raises ``ValueError`` naming an unknown coding,
    :class:`BodyTooLarge`, or ``zlib.error`` for corrupt data."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in _WBITS:
            raise ValueError(f"Content-Encoding [{coding}] is not supported (gzip, deflate or identity)")
        if coding == "deflate" and body[:1] != b"\x78":  # raw deflate without the zlib wrapper, as some clients send
            body = _inflate(body, -zlib.MAX_WBITS, limit)
        else:
            body = _inflate(body, _WBITS[coding], limit)
    return body


class DecodeRequestBodies:
    """ASGI middleware: a request with a ``Content-Encoding`` reaches ``app`` decoded, with that header removed and
    ``Content-Length`` set to the decoded size. Unknown codings are a 415, corrupt data a 400, oversize a 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_DECODED_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-encoding"), "")
        if not encoding.strip() or encoding.strip().lower() == "identity":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            body = decode_body(b"".join(chunks), encoding, self.limit)
        except BodyTooLarge as exc:
            await es_error(413, "content_too_long_exception", str(exc))(scope, receive, send)
            return
        except zlib.error as exc:
            await es_error(400, "parse_exception", f"request body is not valid {encoding}: {exc}")(scope, receive, send)
            return
        except ValueError as exc:
            await es_error(415, "illegal_argument_exception", str(exc))(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay(body, receive), send)
