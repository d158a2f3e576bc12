"""The one rerank client against a real HTTP server on loopback that misbehaves on purpose (503s, 429s, slowness:
what a real model server cannot be made to do on demand, hence this small stdlib server): retries with backoff on
429/5xx, none on 4xx, and never past the call's budget; the sync wrapper eval uses gives the same answers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from searchtune.eval.remote import RemoteRerankError, RemoteReranker
from searchtune.rerank_client import RerankClient, RerankError, SyncRerankClient


class Flaky:
    """Answers ``failures`` requests with ``status``, then Cohere-shaped scores (document length); counts requests."""

    def __init__(self, status: int = 503, failures: int = 0, delay_s: float = 0.0) -> None:
        self.status, self.failures, self.delay_s, self.calls = status, failures, delay_s, 0
        self.arrivals: list[float] = []  # time.monotonic() of each request
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                flaky.calls += 1
                flaky.arrivals.append(time.monotonic())
                time.sleep(flaky.delay_s)
                if flaky.calls <= flaky.failures:
                    payload, code = {"message": "busy"}, flaky.status
                else:
                    payload = {"results": [{"index": i, "relevance_score": float(len(d))}
                                           for i, d in enumerate(body["documents"])]}
                    code = 200
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/rerank"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def flaky():
    servers: list[Flaky] = []

    def make(**kwargs) -> Flaky:
        servers.append(Flaky(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


async def _rerank(url: str, timeout: float, took: list | None = None, **client) -> list[float]:
    rerank = RerankClient(**client)
    started = time.monotonic()
    try:
        return await rerank.rerank(url, None, None, "q", ["a", "bbb", "cc"], timeout=timeout)
    finally:
        if took is not None:
            took.extend([started, time.monotonic() - started])
        await rerank.aclose()


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_5xx_are_retried_with_backoff(flaky, status: int) -> None:
    server = flaky(status=status, failures=2)
    assert asyncio.run(_rerank(server.url, timeout=5.0, retries=2, backoff_s=0.05)) == [1.0, 3.0, 2.0]
    assert server.calls == 3


def test_a_4xx_is_not_retried(flaky) -> None:
    server = flaky(status=400, failures=5)
    with pytest.raises(RerankError) as caught:
        asyncio.run(_rerank(server.url, timeout=5.0, retries=3, backoff_s=0.01))
    assert caught.value.reason == "http_400" and server.calls == 1


def test_a_budget_bounded_call_never_retries_past_its_budget(flaky) -> None:
    server = flaky(status=503, failures=100, delay_s=0.05)
    took: list[float] = []
    with pytest.raises(RerankError) as caught:
        asyncio.run(_rerank(server.url, timeout=0.3, took=took, retries=50, backoff_s=0.05))
    assert caught.value.reason in ("http_503", "timeout")
    assert 1 < server.calls < 10  # it did retry, and stopped long before its 50 retries
    started, elapsed = took
    assert all(arrival < started + 0.3 + 0.1 for arrival in server.arrivals)  # no attempt begun past the budget
    assert elapsed < 0.3 + 1.0  # generous slack for a loaded machine; 50 retries with backoff would take minutes


def test_the_sync_wrapper_and_eval_scorer_use_the_same_core(flaky) -> None:
    server = flaky(status=502, failures=1)
    client = SyncRerankClient(retries=2, backoff_s=0.01)
    try:
        assert client.rerank(server.url, "cohere", None, "q", ["xx", "y"], timeout=5.0) == [2.0, 1.0]
    finally:
        client.close()
    with RemoteReranker(server.url.removesuffix("/v1/rerank"), timeout=2.0, retries=1, backoff=0.01) as scorer:
        assert scorer.score("q", ["abcd", "a"]) == [4.0, 1.0]
    down = flaky(status=503, failures=100)
    with RemoteReranker(down.url, timeout=2.0, retries=1, backoff=0.01) as scorer:
        with pytest.raises(RemoteRerankError, match="http_503"):
            scorer.score("q", ["a"])
    assert down.calls == 2
