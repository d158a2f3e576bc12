"""Issue 12's breaker and budget rows against a real `searchtune serve` (CPU, the bundled MiniLM), the real
Elasticsearch node and the gateway as a subprocess: a 4xx from the model does not open the circuit, circuits are
per (pipeline, endpoint), the documented pipeline reranks under the default budget, the response says when a budget
is below the endpoint's p50, and after a SIGKILL reranking resumes within 2 s of the restarted model's /ready.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process
from searchtune.serve.process import start_server_process
from searchtune.subprocesses import free_port

ADMIN_KEY = "t-res-admin-" + uuid.uuid4().hex
ADMIN = {ADMIN_KEY_HEADER: ADMIN_KEY}
MAX_DOCUMENTS = 50  # the model server's limit: a wider window is its 413
#: The pipeline of docs/gateway.md, as written there (only the port differs).
DOCS_PIPELINE = {"description": "Neural rerank via Bailian", "request_processors": [{"neural_rerank": {
    "model_id": "custom-rerank-v1", "endpoint": "http://127.0.0.1:8080/api/v1/services/rerank", "field": "query_text",
    "top_k": 10, "headers": {"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN_API_KEY"}}}]}


def _serve(base_model_path: str, port: int = 0):
    return start_server_process(base_model_path, port=port, env={"SEARCHTUNE_SERVE_MODEL_NAMES": "custom-rerank-v1"},
                                extra_args=["--max-documents", str(MAX_DOCUMENTS),
                                                                        "--max-length", "128"])


@pytest.fixture(scope="module")
def model_server(base_model_path: str):
    server = _serve(base_model_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def setup(es_url: str, scifact_dir: Path, scifact_index: str, pipeline_index: str):
    """200 SciFact documents, SciFact queries, and a gateway with the default budget and breaker settings."""
    queries = [json.loads(line)["text"] for _, line in zip(range(60), open(scifact_dir / "queries.jsonl"))]
    with start_gateway_process(es_url, port=0, admin_key=ADMIN_KEY,
                               extra_args=["--pipeline-index", pipeline_index]) as gateway:
        yield gateway, scifact_index, queries


def _put(gateway, name: str, endpoint: str, **options) -> None:
    body = {"request_processors": [{"neural_rerank": {"endpoint": endpoint, "top_k": 10, **options}}]}
    r = httpx.put(f"{gateway.url}/_search/pipeline/{name}", json=body, headers=ADMIN, timeout=60)
    assert r.status_code == 200, r.text


def _search(gateway, index: str, pipeline: str, text: str, size: int = 10, every_document: bool = False) -> dict:
    """One pipeline search; ``every_document``: match all documents (so ``size`` hits come back), the query text
    given the OpenSearch way."""
    query = {"match_all": {}} if every_document else {"multi_match": {"query": text, "fields": ["title", "text"]}}
    body = {"query": query, "size": size, "ext": {"rerank": {"query_context": {"query_text": text}}}}
    r = httpx.post(f"{gateway.url}/{index}/_search", params={"search_pipeline": pipeline}, timeout=120, json=body)
    assert r.status_code == 200, r.text
    return r.json()["searchtune"]


def test_model_4xx_and_short_budgets_do_not_open_other_circuits(setup, model_server):
    """Row "3 searches with size=1500 (the model answers 413)": the request's fault, not the endpoint's; and a
    short-budget pipeline's timeouts open only its own circuit."""
    gateway, index, queries = setup
    endpoint = f"{model_server.url}/v1/rerank"
    # t-res-a reranks up to 150 hits, so a 150-hit search sends the model more documents than it accepts
    for name, options in (("t-res-a", {"top_k": 150}), ("t-res-b", {}), ("t-res-short", {"timeout_ms": 1}),
                          ("t-res-long", {"timeout_ms": 20000})):
        _put(gateway, name, endpoint, **options)
    wide = [_search(gateway, index, "t-res-a", queries[0], size=150, every_document=True) for _ in range(4)]
    assert [w["fallback_reason"] for w in wide] == ["http_413"] * 4  # never circuit_open
    _put(gateway, "t-res-a", endpoint)  # back to a 10-hit window: same pipeline, so the same (still closed) circuit
    assert _search(gateway, index, "t-res-a", queries[1])["reranked"] is True
    assert _search(gateway, index, "t-res-b", queries[2])["reranked"] is True
    short = [_search(gateway, index, "t-res-short", q).get("fallback_reason") for q in queries[3:7]]
    assert short == ["timeout", "timeout", "timeout", "circuit_open"]
    assert _search(gateway, index, "t-res-long", queries[7])["reranked"] is True  # same endpoint, own circuit


def test_documented_pipeline_reranks_under_the_default_budget(setup, model_server):
    """Row "the docs' pipeline as written, CPU model, 10 documents": every search reranked with the gateway's
    default budget; a budget below the endpoint's recent p50 is named in the response."""
    gateway, index, queries = setup
    documented = json.loads(json.dumps(DOCS_PIPELINE))
    processor = documented["request_processors"][0]["neural_rerank"]
    processor["endpoint"] = processor["endpoint"].replace("http://127.0.0.1:8080", model_server.url)
    r = httpx.put(f"{gateway.url}/_search/pipeline/t-res-docs", json=documented, headers=ADMIN, timeout=60)
    assert r.status_code == 200, r.text
    outcomes = [_search(gateway, index, "t-res-docs", q) for q in queries[:20]]
    reranked = sum(o["reranked"] for o in outcomes)
    slowest = max(o.get("rerank_ms", 0) for o in outcomes)
    assert reranked == len(outcomes), ([o for o in outcomes if not o["reranked"]][:3], slowest)
    assert all("budget_below_p50" not in o for o in outcomes)
    _put(gateway, "t-res-tight", f"{model_server.url}/api/v1/services/rerank", timeout_ms=5)
    tight = _search(gateway, index, "t-res-tight", queries[40])
    assert tight["fallback_reason"] == "timeout"
    note = tight["budget_below_p50"]
    assert note["budget_ms"] == 5 and note["endpoint_p50_ms"] > 5 and note["samples"] >= 5


def test_reranking_resumes_within_2s_of_the_model_answering_again(setup, base_model_path):
    """Row "model SIGKILLed under load, restarted after 10 s": no search fails, and the first reranked search comes
    within 2 s of the restarted server's /ready (the recovery probe), not after --breaker-reset (10 s)."""
    gateway, index, queries = setup
    port = free_port()
    server = _serve(base_model_path, port)
    _put(gateway, "t-res-kill", f"http://127.0.0.1:{port}/v1/rerank")
    results: list[tuple[float, float, int, bool]] = []  # (sent at, answered at, status, reranked)
    stop = threading.Event()
    began = time.monotonic()

    def loop(worker: int) -> None:
        with httpx.Client(timeout=60) as http:
            n = worker
            while not stop.is_set() and len(results) < 5000 and time.monotonic() - began < 400:
                sent = time.monotonic()
                r = http.post(f"{gateway.url}/{index}/_search", params={"search_pipeline": "t-res-kill"},
                              json={"query": {"match": {"text": queries[n % len(queries)]}}, "size": 10})
                reranked = r.status_code == 200 and r.json()["searchtune"]["reranked"]
                results.append((sent, time.monotonic(), r.status_code, reranked))
                n += 4
                time.sleep(0.1)

    restarted = None
    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(loop, w) for w in range(4)]
        try:
            warm = time.monotonic() + 90  # the kill comes once the model has reranked (slow on a loaded machine)
            while not any(r[3] for r in results) and time.monotonic() < warm:
                time.sleep(0.2)
            time.sleep(1)
            server.process.kill()
            killed = time.monotonic()
            server.process.wait(10)
            time.sleep(10)
            restarted = _serve(base_model_path, port)  # returns once /ready answers
            ready = time.monotonic()
            time.sleep(8)
        finally:
            stop.set()
            for worker in workers:
                worker.result()
            server.stop()
            if restarted is not None:
                restarted.stop()
    assert all(status == 200 for _, _, status, _ in results), "a search failed"
    assert any(reranked for sent, _, _, reranked in results if sent < killed)
    # reranking resumes when the gateway sends searches to the model again: the first reranked search's send time
    # (its answer also waits for the CPU model's own compute, seconds on a loaded 2-core machine)
    first = min((r for r in results if r[3] and r[0] > killed), key=lambda r: r[0])
    recovery = first[0] - ready
    print(f"\nrecovery: first reranked search sent {first[0] - killed:.1f} s after the kill, {recovery:.2f} s after "
          f"/ready (answered {first[1] - ready:.2f} s after); {len(results)} searches, 0 failed, "
          f"{sum(1 for s, _, _, r in results if s > first[0] and not r)} fell back after it")
    assert recovery < 2.0
