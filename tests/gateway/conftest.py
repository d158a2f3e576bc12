"""A loopback listener: a tiny real HTTP server in the test process that records every request it receives and
answers with a configurable status/body. It stands where an attacker's host (or a broken cluster) would be, so the
exfiltration and fault tests see exactly what the gateway sends out."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Listener:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 200
    content_type: str = "application/json"
    body: bytes | None = None  # None: a Cohere rerank answer scoring every document (reversed order)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, request_body: bytes) -> bytes:
        if self.body is not None:
            return self.body
        try:
            count = len(json.loads(request_body).get("documents") or [])
        except (ValueError, AttributeError):
            count = 0
        return json.dumps({"results": [{"index": i, "relevance_score": float(i)} for i in range(count)]}).encode()


def _handler(listener: Listener):
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            listener.received.append(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                              body))
            payload = listener.answer(body)
            self.send_response(listener.status)
            self.send_header("content-type", listener.content_type)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        def log_message(self, *args) -> None:  # quiet
            pass

    return Handler


@pytest.fixture
def listener():
    """Start a listener on a free loopback port; stopped after the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    made = Listener(server)
    server.RequestHandlerClass = _handler(made)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def pipeline_index(es):
    """A pipelines index of the module's own (the gateway creates it), deleted after."""
    import uuid

    name = f"t-gw-pipelines-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def scifact_index(es, scifact_dir):
    """The first 200 real SciFact documents (title, text) in an index of the module's own, deleted after."""
    import uuid

    name = f"t-gw-scifact-{uuid.uuid4().hex[:8]}"
    operations = []
    with open(scifact_dir / "corpus.jsonl") as handle:
        for _, line in zip(range(200), handle):
            row = json.loads(line)
            operations += [{"index": {"_index": name, "_id": row["_id"]}}, {"title": row["title"], "text": row["text"]}]
    es.bulk(operations=operations, refresh=True)
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)
