"""Issue 12's gateway rows, each against real processes: the gateway as a subprocess, the real Elasticsearch node,
a loopback listener (conftest.py) where an attacker's host or a broken cluster would be, and, in
test_gateway_resilience.py, a real `searchtune serve`.

Each test failed on the code before issue 12: unauthenticated pipeline writes, any environment variable expandable
into headers, the upstream password in health/logs/502 bodies and lent to anonymous clients, the pipelines index
readable through the gateway, no body limit, plain-text 500s for bad ``_msearch`` parameters.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import psutil
import pytest
from elasticsearch import AuthorizationException, Elasticsearch

from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process
from searchtune.subprocesses import free_port

ADMIN_KEY = "t-sec-admin-" + uuid.uuid4().hex
ADMIN = {ADMIN_KEY_HEADER: ADMIN_KEY}
PASSWORD = "Pa55word" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def docs_index(scifact_index):
    return scifact_index


def _gateway(es_url: str, pipeline_index: str, *extra: str, env: dict | None = None, admin: bool = True):
    return start_gateway_process(es_url, port=0, extra_args=["--pipeline-index", pipeline_index, *extra],
                                 env=env, admin_key=ADMIN_KEY if admin else None)


def _rerank(endpoint: str, headers: dict | None = None) -> dict:
    return {"request_processors": [{"neural_rerank": {"endpoint": endpoint, "top_k": 10, "headers": headers or {}}}]}


QUERY = {"query": {"match": {"text": "cells"}}, "size": 5}


def test_pipeline_writes_need_the_admin_key_and_headers_only_allow_listed_secrets(es, es_url, listener,
                                                                                  pipeline_index, docs_index):
    """Row 1: an unauthenticated PUT whose headers are ``Bearer $SECRET_TEST`` and ``${HOME}`` pointed at a
    listener: refused (401), and with the key refused again (400 naming the header); the listener gets nothing."""
    endpoint = f"{listener.url}/v1/rerank"
    exfil = _rerank(endpoint, {"Authorization": "Bearer $SECRET_TEST", "X-Home": "${HOME}"})
    env = {"SECRET_TEST": "abc123", "SEARCHTUNE_SECRET_TEST": "abc123"}
    with _gateway(es_url, pipeline_index, env=env) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        anonymous = http.put("/_search/pipeline/t-sec-x", json=exfil)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "security_exception"
        assert http.put("/_search/pipeline/t-sec-x", json=exfil, headers={ADMIN_KEY_HEADER: "wrong"}).status_code == 403
        refused = http.put("/_search/pipeline/t-sec-x", json=exfil, headers=ADMIN)
        assert refused.status_code == 400, refused.text
        assert "request_processors[0].neural_rerank.headers.Authorization: references $SECRET_TEST" in refused.text
        home = http.put("/_search/pipeline/t-sec-x", json=_rerank(endpoint, {"X-Home": "${HOME}"}), headers=ADMIN)
        assert home.status_code == 400 and "headers.X-Home: references $HOME" in home.text
        assert http.post(f"/{docs_index}/_search", params={"search_pipeline": "t-sec-x"}, json=QUERY).status_code == 404
        assert listener.received == []

        # the allow-listed prefix works, and only that value leaves the gateway
        allowed = _rerank(endpoint, {"Authorization": "Bearer $SEARCHTUNE_SECRET_TEST"})
        assert http.put("/_search/pipeline/t-sec-ok", json=allowed, headers=ADMIN).status_code == 200
        r = http.post(f"/{docs_index}/_search", params={"search_pipeline": "t-sec-ok"}, json=QUERY).json()
        assert r["searchtune"]["reranked"] is True
        assert listener.received[-1].headers.get("authorization") == "Bearer abc123"
        assert http.delete("/_search/pipeline/t-sec-ok").status_code == 401  # deletes need the key too

        # a definition written on the cluster around the gateway: $HOME and $SECRET_TEST expand to nothing
        es.index(index=pipeline_index, id="pipeline:t-sec-around", refresh=True,
                 document={"kind": "pipeline", "name": "t-sec-around", "definition": exfil})
        r = http.post(f"/{docs_index}/_search", params={"search_pipeline": "t-sec-around"}, json=QUERY).json()
        sent = listener.received[-1].headers
        assert "x-home" not in sent and "authorization" not in sent and "abc123" not in json.dumps(sent)
        assert http.delete("/_search/pipeline/t-sec-ok", headers=ADMIN).status_code == 200

    with _gateway(es_url, pipeline_index, admin=False) as keyless:  # no admin key configured: no writes at all
        r = httpx.put(f"{keyless.url}/_search/pipeline/t-sec-y", json=_rerank(endpoint), headers=ADMIN, timeout=60)
        assert r.status_code == 403 and "no admin key is configured" in r.text


def test_default_pipeline_writes_need_the_admin_key(es_url, listener, pipeline_index, docs_index):
    """Row 2: an unauthenticated default pipeline would send every client's searches to the listener."""
    with _gateway(es_url, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        assert http.put("/_search/pipeline/t-sec-d", json=_rerank(f"{listener.url}/v1/rerank"),
                        headers=ADMIN).status_code == 200
        refused = http.put(f"/_searchtune/default_pipeline/{docs_index}", json={"pipeline": "t-sec-d"})
        assert refused.status_code == 401
        for _ in range(3):
            plain = http.post(f"/{docs_index}/_search", json=QUERY)
            assert plain.status_code == 200 and "searchtune" not in plain.json()
        assert listener.received == []
        assert http.put(f"/_searchtune/default_pipeline/{docs_index}", json={"pipeline": "t-sec-d"},
                        headers=ADMIN).status_code == 200
        assert http.delete(f"/_searchtune/default_pipeline/{docs_index}").status_code == 401
        assert http.delete(f"/_searchtune/default_pipeline/{docs_index}", headers=ADMIN).status_code == 200
        http.delete("/_search/pipeline/t-sec-d", headers=ADMIN)


def test_upstream_credentials_are_never_shown_nor_lent(listener, pipeline_index):
    """Row 3: ``--es-url http://elastic:PASSWORD@...``: not in health, logs, metrics or 502 bodies; anonymous
    clients reach the cluster anonymously unless ``--lend-credentials``; the gateway's own calls use them."""
    basic = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    cluster = f"http://elastic:{PASSWORD}@127.0.0.1:{listener.server.server_address[1]}"
    with _gateway(cluster, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        shown = [http.get("/_searchtune/health").text, http.get("/metrics").text]
        assert http.get("/catalog/_search").status_code == 200
        assert http.get("/catalog/_search", headers={"Authorization": "ApiKey client-own"}).status_code == 200
        searches = [r for r in listener.received if r.path.startswith("/catalog/_search")]
        assert [r.headers.get("authorization") for r in searches] == [None, "ApiKey client-own"]
        assert http.put("/_search/pipeline/t-sec-c", json=_rerank("http://127.0.0.1:9/v1/rerank"),
                        headers=ADMIN).status_code == 200
        store_calls = [r for r in listener.received if r.path.startswith(f"/{pipeline_index}/_doc")]
        assert store_calls and all(r.headers.get("authorization") == basic for r in store_calls)
        assert all(ADMIN_KEY not in json.dumps(r.headers) for r in listener.received)  # the admin key stays here
        shown.append(gateway.logs())
    dead = f"http://elastic:{PASSWORD}@127.0.0.1:{free_port()}"
    with _gateway(dead, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        for response in (http.get("/catalog/_search"), http.get("/"), http.post("/catalog/_search?search_pipeline=x"),
                         http.put("/_search/pipeline/t-sec-c", json=_rerank("http://127.0.0.1:9/v1/rerank"),
                                  headers=ADMIN)):
            assert response.status_code == 502 and response.json()["error"]["type"] == "gateway_exception"
            shown.append(response.text)
        shown += [http.get("/_searchtune/health").text, http.get("/metrics").text, gateway.logs()]
    for text in shown:
        assert PASSWORD not in text and basic.split()[1] not in text
    listener.received.clear()
    with _gateway(cluster, pipeline_index, "--lend-credentials") as gateway:
        assert httpx.get(f"{gateway.url}/catalog/_search", timeout=60).status_code == 200
        lent = [r for r in listener.received if r.path.startswith("/catalog/_search")]
        assert lent[0].headers.get("authorization") == basic  # only when the operator asks for it


def test_literal_secrets_are_refused_and_the_pipelines_index_is_out_of_reach(es, es_url, pipeline_index, docs_index):
    """Row 4: a literal secret is refused (not stored); the pipelines index cannot be read or written through the
    gateway by id, search, mget, bulk, wildcards with hidden expansion, aliases or delete."""
    literal = "sk-literal-" + uuid.uuid4().hex
    with _gateway(es_url, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        refused = http.put("/_search/pipeline/t-sec-lit", headers=ADMIN, json=_rerank(
            "http://127.0.0.1:9/v1/rerank", {"Authorization": f"Bearer {literal}"}))
        assert refused.status_code == 400 and "headers.Authorization: holds a literal credential" in refused.text
        assert literal not in refused.text
        assert not es.exists(index=pipeline_index, id="pipeline:t-sec-lit")
        assert http.put("/_search/pipeline/t-sec-lit", headers=ADMIN, json=_rerank(
            "http://127.0.0.1:9/v1/rerank", {"X-Custom": literal})).status_code == 200
        assert literal not in http.get("/_search/pipeline/t-sec-lit").text + http.get("/_search/pipeline").text
        assert es.exists(index=pipeline_index, id="pipeline:t-sec-lit")

        doc = f"/{pipeline_index}/_doc/pipeline:t-sec-lit"
        bulk = (json.dumps({"index": {"_index": pipeline_index, "_id": "pipeline:evil"}}) + "\n" +
                json.dumps({"kind": "pipeline", "name": "evil", "definition": {}}) + "\n")
        refusals = [
            http.get(doc), http.put(doc, json={"kind": "pipeline"}), http.post(f"/{pipeline_index}/_search"),
            http.post("/_mget", json={"docs": [{"_index": pipeline_index, "_id": "pipeline:t-sec-lit"}]}),
            http.post("/_bulk", content=bulk, headers={"content-type": "application/x-ndjson"}),
            http.get("/t-gw-*/_search", params={"expand_wildcards": "all"}),
            http.get("/_search", params={"expand_wildcards": "all"}),
            http.post("/_aliases", json={"actions": [{"add": {"index": pipeline_index, "alias": "t-sec-alias"}}]}),
            http.delete(f"/{pipeline_index}"),
        ]
        for response in refusals:
            assert response.status_code == 403, (response.request.url, response.text)
            assert response.json()["error"]["type"] == "security_exception" and literal not in response.text
        assert not es.exists(index=pipeline_index, id="pipeline:evil")
        client = Elasticsearch(gateway.url, request_timeout=30)
        with pytest.raises(AuthorizationException):
            client.get(index=pipeline_index, id="pipeline:t-sec-lit")
        # plain wildcards skip the hidden index (the cluster's own rule, checked here on the real node)
        hits = http.get("/t-gw-*/_search", params={"size": 100}).json()["hits"]["hits"]
        assert hits and all(h["_index"] != pipeline_index for h in hits)
        # an alias made on the cluster directly is refused within seconds
        es.indices.put_alias(index=pipeline_index, name="t-sec-sneaky")
        deadline = time.monotonic() + 8
        while http.get("/t-sec-sneaky/_search").status_code != 403 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http.get("/t-sec-sneaky/_search").status_code == 403
        es.indices.delete_alias(index=pipeline_index, name="t-sec-sneaky")
        http.delete("/_search/pipeline/t-sec-lit", headers=ADMIN)


def test_endpoints_outside_the_allow_list_are_refused_and_never_called(es, es_url, listener, pipeline_index,
                                                                       docs_index):
    """Item 2: only loopback by default; ``--allow-endpoint`` adds hosts; a stored pipeline (written around the
    gateway) whose endpoint is not allowed falls back without a call."""
    outside = "http://10.255.255.1:8080/v1/rerank"
    with _gateway(es_url, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        refused = http.put("/_search/pipeline/t-sec-far", json=_rerank(outside), headers=ADMIN)
        assert refused.status_code == 400 and "neural_rerank.endpoint" in refused.text
        es.index(index=pipeline_index, id="pipeline:t-sec-far", refresh=True,
                 document={"kind": "pipeline", "name": "t-sec-far", "definition": _rerank(outside)})
        r = http.post(f"/{docs_index}/_search", params={"search_pipeline": "t-sec-far"}, json=QUERY).json()
        assert r["searchtune"]["fallback_reason"] == "endpoint_not_allowed"
        assert r["searchtune"].get("rerank_ms", 0) < 50  # refused at once: no connection attempt
    with _gateway(es_url, pipeline_index, "--allow-endpoint", "10.0.0.0/8") as gateway:
        ok = httpx.put(f"{gateway.url}/_search/pipeline/t-sec-far", json=_rerank(outside), headers=ADMIN, timeout=60)
        assert ok.status_code == 200
    es.delete(index=pipeline_index, id="pipeline:t-sec-far", refresh=True)


def _five_xx(metrics: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("searchtune_gateway_requests_total{") and 'status="5' in line)


def test_bad_input_is_a_4xx_and_every_5xx_is_counted(es_url, listener, pipeline_index, docs_index):
    """Row "gateway: 60 MB body...": 413 without holding the body, 400 for bad ``_msearch`` parameters and odd line
    counts, ES-shaped 502 for a cluster answering non-JSON, and ``/metrics`` counting every 5xx."""
    with _gateway(es_url, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=120) as http:
        process = psutil.Process(gateway.process.pid)
        before = process.memory_info().rss
        huge = b"x" * (60 * 1024 * 1024)
        try:
            too_big = http.post(f"/{docs_index}/_bulk", content=huge, headers={"content-type": "application/x-ndjson"})
            assert too_big.status_code == 413 and too_big.json()["error"]["type"] == "content_too_long_exception"
        except httpx.WriteError:
            pass  # the gateway answered 413 and closed before the client finished sending: equally refused
        chunked = http.post(f"/{docs_index}/_bulk", content=iter([huge[i:i + 1 << 20] for i in range(0, len(huge), 1 << 20)]))
        assert chunked.status_code == 413
        assert process.memory_info().rss - before < 40 * 1024 * 1024
        del huge

        bad = http.post(f"/{docs_index}/_msearch", params={"max_concurrent_searches": "abc"}, content=b"{}\n{}\n",
                        headers={"content-type": "application/x-ndjson"})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "illegal_argument_exception"
        assert "max_concurrent_searches" in bad.json()["error"]["reason"]
        odd = http.post(f"/{docs_index}/_msearch", content=b"{}\n{}\n{}\n", headers={"content-type": "application/x-ndjson"})
        assert odd.status_code == 400 and "3 non-empty lines" in odd.text
        assert _five_xx(http.get("/metrics").text) == 0

    listener.content_type, listener.body = "text/html", b"<html><body>502 Bad Gateway (load balancer)</body></html>"
    cluster = f"http://127.0.0.1:{listener.server.server_address[1]}"
    with _gateway(cluster, pipeline_index) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
        seen = [http.put("/_search/pipeline/t-sec-html", json=_rerank("http://127.0.0.1:9/v1/rerank"), headers=ADMIN),
                http.post("/catalog/_search", params={"search_pipeline": "t-sec-html"}, json=QUERY),
                http.get("/_search/pipeline"),
                http.post("/catalog/_msearch", params={"search_pipeline": "t-sec-html"}, content=b"{}\n{}\n",
                          headers={"content-type": "application/x-ndjson"})]
        for response in seen:
            assert response.status_code == 502, response.text
            assert response.json()["error"]["type"] == "gateway_exception" and "not JSON" in response.text
        assert _five_xx(http.get("/metrics").text) == len(seen)
