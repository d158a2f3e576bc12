"""Bad input and heavy input against real servers (issue 12): invalid text is a 400 that keeps the connection,
an unknown model is a 404 in each dialect's error shape, framework errors use the same shape, tokenization of huge
requests does not stall the event loop, and requests end at their budget."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from searchtune.serve.process import start_server_process

SURROGATE_BODY = b'{"query": "bone \\ud800 density", "texts": ["vitamin d", "tea"]}'  # a JSON escape, as clients send


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-body")
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def raw_post(sock: socket.socket, port: int, path: str, body: bytes, key: str) -> tuple[int, dict, bytes]:
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return read_response(sock)


def test_lone_surrogate_is_400_and_the_keep_alive_connection_survives(ce_server, api_key) -> None:
    with socket.create_connection(("127.0.0.1", ce_server.port), timeout=60) as sock:
        status, headers, body = raw_post(sock, ce_server.port, "/rerank", SURROGATE_BODY, api_key)
        assert status == 400, body
        error = json.loads(body)
        assert error["code"] == "InvalidText" and error["param"] == "query" and error["error_type"] == "validation"
        assert headers.get("connection", "").lower() != "close"
        for path, payload in (("/v2/rerank", b'{"query": "q", "documents": ["a", "\\udc00"]}'),
                              ("/api/v1/services/rerank/text-rerank/text-rerank",
                               b'{"input": {"query": "q", "documents": [{"text": "\\ud83d"}]}}')):
            status, _, body = raw_post(sock, ce_server.port, path, payload, api_key)
            assert status == 400 and json.loads(body)["code"] == "InvalidText", body
        ok = json.dumps({"query": "vitamin d", "texts": ["bone", "tea"]}).encode()
        status, _, body = raw_post(sock, ce_server.port, "/rerank", ok, api_key)  # same socket
        assert status == 200 and len(json.loads(body)) == 2


@pytest.mark.parametrize("path,body,shape", [
    ("/v2/rerank", {"model": "rerank-v3.5", "query": "q", "documents": ["a"]}, "default"),
    ("/v1/rerank", {"model": "rerank-v3.5", "query": "q", "documents": ["a"]}, "default"),
    ("/api/v1/services/rerank/text-rerank/text-rerank",
     {"model": "gte-rerank-v2", "input": {"query": "q", "documents": ["a"]}}, "default"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a"]}, "openai"),
    ("/v2/embed", {"model": "embed-v4.0", "texts": ["a"], "input_type": "search_query"}, "default"),
    ("/api/v1/services/embeddings/text-embedding/text-embedding",
     {"model": "text-embedding-v4", "input": {"texts": ["a"]}}, "default"),
])
def test_unknown_model_is_404_in_the_dialects_error_shape(emb_server, path: str, body: dict, shape: str) -> None:
    response = httpx.post(f"{emb_server.url}{path}", json=body, timeout=60)
    assert response.status_code == 404
    error = response.json()
    assert error["code"] == "ModelNotFound" and body["model"] in error["message"] and error["request_id"]
    if shape == "openai":
        assert error["error"]["type"] == "not_found_error" and error["error"]["param"] == "model"
    served = httpx.post(f"{emb_server.url}{path}", json={**body, "model": "minilm"}, timeout=60)
    assert served.status_code == 200, served.text  # the name it serves (or an alias it was given) works


@pytest.mark.parametrize("method,path,content,status", [
    ("POST", "/no/such/route", b"{}", 404),
    ("GET", "/v2/rerank", None, 405),
    ("POST", "/v2/rerank", b"{not json", 422),
    ("POST", "/v1/embeddings", b'{"input": 3}', 422),
    ("POST", "/embed", b'{"inputs": {"a": 1}}', 422),
])
def test_framework_errors_use_the_same_shape(emb_server, method, path, content, status) -> None:
    response = httpx.request(method, f"{emb_server.url}{path}", content=content, timeout=60,
                             headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()
    assert "detail" not in error and {"code", "message", "request_id"} <= set(error), error
    if path == "/v1/embeddings":
        assert error["error"]["message"] == error["message"]
    if path == "/embed":
        assert error["error"] == error["message"] and error["error_type"] == "validation"


@pytest.fixture(scope="module")
def budget_server(base_model_path, serve_home):
    server = start_server_process(base_model_path, backend="torch", env={"SEARCHTUNE_HOME": str(serve_home)},
                                  extra_args=["--max-length", "128", "--precision", "fp32", "--timeout", "5"])
    yield server
    server.stop()


def test_huge_requests_neither_stall_health_nor_outlive_their_budget(budget_server) -> None:
    """Before: token counting ran on the event loop (/health stalled 4.6-7.2 s) and 30 s-budget requests ended
    at 30-40 s. The p99 < 100 ms figure is measured by benchmarks/serve_bench.py; this test only proves that the
    loop is never blocked for long and that the budget holds, with margins wide enough for a shared, loaded
    machine (before the fix each 9 MB request held the loop for seconds, one after the other)."""
    doc = ("bone density vitamin fracture trial " * 300)[:10_000]
    body = json.dumps({"query": "vitamin d", "texts": [doc] * 900}).encode()  # 9 MB, 900 x ~2000 tokens
    ends: list[tuple[int, float]] = []
    health: list[float] = []
    stop = threading.Event()

    def huge() -> None:
        start = time.monotonic()
        r = httpx.post(f"{budget_server.url}/rerank", content=body, timeout=60,
                       headers={"content-type": "application/json"})
        ends.append((r.status_code, time.monotonic() - start))

    def probe() -> None:
        with httpx.Client(base_url=budget_server.url, timeout=30) as client:
            for _ in range(2000):  # bounded; the stop event ends it
                if stop.is_set():
                    return
                start = time.monotonic()
                assert client.get("/health").status_code == 200
                health.append(time.monotonic() - start)
                time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    workers = [threading.Thread(target=huge) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    stop.set()
    prober.join(30)
    assert len(ends) == 3 and all(status == 504 for status, _ in ends), ends
    assert max(t for _, t in ends) < 5 + 4, ends  # the 5 s budget, plus the upload and one running batch
    assert len(health) > 20 and max(health) < 2.5, sorted(health)[-5:]
    start = time.monotonic()
    after = httpx.post(f"{budget_server.url}/rerank", json={"query": "q", "texts": ["a", "b"]}, timeout=30)
    assert after.status_code == 200 and time.monotonic() - start < 5  # the dropped inputs left no backlog
