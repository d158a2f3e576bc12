"""The `hybrid` pipeline processor: the real gateway process in front of the real node, with `searchtune serve`
(bundled all-MiniLM-L6-v2) as the embedding endpoint, on a SciFact slice indexed with vectors of the same model."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest
from typer.testing import CliRunner

from searchtune.data import load_dataset
from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process

from .conftest import MAX_LENGTH

ADMIN_KEY = "t-hy-admin-" + uuid.uuid4().hex  # pipeline writes need the gateway's admin key


@pytest.fixture(scope="module")
def embed_server(base_model_path: str):
    from searchtune.serve.process import start_server_process

    server = start_server_process(base_model_path, port=0, backend="torch",
                                  env={"SEARCHTUNE_SERVE_MODEL_NAMES": "all-MiniLM-L6-v2"},  # the pipelines' model_id
                                  extra_args=["--max-length", str(MAX_LENGTH), "--precision", "fp32"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(es, es_url: str):
    pipelines = f"t-hy-pipelines-{uuid.uuid4().hex[:8]}"
    with start_gateway_process(es_url, port=0, timeout_s=5.0, admin_key=ADMIN_KEY,
                               extra_args=["--pipeline-index", pipelines, "--breaker-failures", "50"]) as handle:
        yield handle
    es.indices.delete(index=pipelines, ignore_unavailable=True)


@pytest.fixture(scope="module")
def http(gateway):
    with httpx.Client(base_url=gateway.url, timeout=60, headers={ADMIN_KEY_HEADER: ADMIN_KEY}) as client:
        yield client


def _put(http, name: str, definition: dict) -> None:
    response = http.put(f"/_search/pipeline/{name}", json=definition)
    assert response.status_code == 200, response.text


def _hybrid(embed_server, **extra) -> dict:
    return {"hybrid": {"model_id": "all-MiniLM-L6-v2", "endpoint": f"{embed_server.url}/v1/embeddings", "k": 50,
                       "fusion": {"method": "linear", "weight": 0.5}, **extra}}


def _query(text: str, size: int = 10, **extra) -> dict:
    return {"query": {"multi_match": {"query": text, "fields": ["title", "text"]}}, "size": size, **extra}


def _ids(answer: dict) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def test_hybrid_search_differs_from_bm25_and_finds_what_bm25_missed(http, es, vec_index, vec_dataset, embed_server):
    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    ds = load_dataset(vec_dataset)
    queries, qrels = ds.split_queries("test"), ds.split_qrels("test")
    differ, rescued = 0, []
    for qid, query in queries.items():
        bm25 = _ids(dict(es.search(index=vec_index, **_query(query.text))))
        answer = http.post(f"/{vec_index}/_search", params={"search_pipeline": "t-hybrid"},
                           json=_query(query.text)).json()
        meta = answer["searchtune"]
        assert meta["hybrid"] is True and "fallback_reason" not in meta, meta
        hybrid = _ids(answer)
        assert len(hybrid) == 10
        fields = answer["hits"]["hits"][0]["fields"]
        assert "_bm25_score" in fields and "_knn_score" in fields
        assert "embedding" not in answer["hits"]["hits"][0]["_source"]
        differ += hybrid != bm25
        rescued += [d for d in hybrid if d in qrels[qid] and d not in bm25]
    assert differ > 0 and rescued, "hybrid never found a judged document BM25's top 10 lacked"


def test_paging_and_source_filtering(http, vec_index, embed_server):
    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    text = "vitamin D deficiency and bone fractures"
    full = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid", json=_query(text, size=10)).json()
    page = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid",
                     json=_query(text, size=5, **{"from": 5, "_source": ["title"]})).json()
    assert _ids(page) == _ids(full)[5:10]
    assert all(set(hit["_source"]) == {"title"} for hit in page["hits"]["hits"])
    assert all("embedding" not in hit["_source"] and hit["_source"]["text"] for hit in full["hits"]["hits"])
    # the sides fetch ids only and the page's sources come afterwards: the client's choice must survive that
    bare = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid", json=_query(text, size=3, _source=False)).json()
    assert _ids(bare) == _ids(full)[:3] and not any("_source" in hit for hit in bare["hits"]["hits"])
    by_param = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid&_source_includes=text",
                         json=_query(text, size=3)).json()
    assert _ids(by_param) == _ids(full)[:3] and all(set(hit["_source"]) == {"text"} for hit in by_param["hits"]["hits"])


def test_bool_filters_restrict_the_knn_side(http, es, vec_index, vec_dataset, embed_server):
    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    allowed = sorted(load_dataset(vec_dataset).corpus)[:30]
    body = {"query": {"bool": {"must": {"match": {"text": "cancer cells immune response"}},
                               "filter": {"terms": {"id": allowed}}, "must_not": {"ids": {"values": allowed[:3]}}}},
            "size": 20}
    answer = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid", json=body).json()
    assert answer["searchtune"]["hybrid"] is True
    assert _ids(answer) and set(_ids(answer)) <= set(allowed[3:])
    assert any(hit["fields"]["_bm25_score"] == [None] for hit in answer["hits"]["hits"])  # kNN-only hits came


def test_rrf_then_neural_rerank_in_one_pipeline(http, vec_index, embed_server):
    _put(http, "t-hybrid-rerank", {"request_processors": [
        _hybrid(embed_server, fusion={"method": "rrf", "rank_constant": 60}),
        {"neural_rerank": {"endpoint": f"{embed_server.url}/v1/rerank", "top_k": 20, "timeout_ms": 20000}}]})
    answer = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid-rerank", json=_query("insulin resistance")).json()
    meta = answer["searchtune"]
    assert meta["hybrid"] is True and meta["reranked"] is True and meta["fusion"]["method"] == "rrf"
    assert meta["rerank_window"] == 20, "the reranker reads the fused top_k, not all k hits the kNN side fused"
    assert "_hybrid_score" in answer["hits"]["hits"][0]["fields"]
    assert all(hit["_source"]["text"] and "embedding" not in hit["_source"] for hit in answer["hits"]["hits"])


def test_a_page_longer_than_the_rerank_window_keeps_the_fused_order_after_it(http, vec_index, embed_server):
    """40 hits asked, ``top_k`` 15: the model scores 15 pairs (its cost does not grow with the page), hits 15-39
    are hybrid's own 15-39 in order with their sources, and every ``_score`` is below the reranked ones."""
    _put(http, "t-hybrid-only", {"request_processors": [_hybrid(embed_server)]})
    _put(http, "t-hybrid-window", {"request_processors": [
        _hybrid(embed_server),
        {"neural_rerank": {"endpoint": f"{embed_server.url}/v1/rerank", "top_k": 15, "timeout_ms": 20000}}]})
    text = "insulin resistance and glucose uptake in muscle"
    fused = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid-only", json=_query(text, size=40)).json()
    answer = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid-window", json=_query(text, size=40)).json()
    assert answer["searchtune"]["reranked"] is True and answer["searchtune"]["rerank_window"] == 15
    assert len(_ids(fused)) == 40 and _ids(answer)[15:] == _ids(fused)[15:]
    assert set(_ids(answer)[:15]) == set(_ids(fused)[:15]) and _ids(answer)[:15] != _ids(fused)[:15]
    scores = [hit["_score"] for hit in answer["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    tail = answer["hits"]["hits"][15:]
    assert all(hit["_source"]["text"] and hit["fields"]["_hybrid_score"] for hit in tail)
    paged = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid-window",
                      json=_query(text, size=10, **{"from": 10})).json()
    assert _ids(paged) == _ids(answer)[10:20]  # the page straddling the window's edge: same ranking, paged


def test_vectors_of_another_model_are_refused(http, es, embed_server, embedder):
    """An index whose metadata names another model: BM25 order, 200, reason model_mismatch."""
    name = f"t-hy-other-{uuid.uuid4().hex[:6]}"
    es.indices.create(index=name, mappings={
        "_meta": {"searchtune": {"vectors": {"field": "embedding", "dims": 384, "similarity": "cosine",
                                             "model": {"id": "other-model", "fingerprint": "0123456789abcdef"}}}},
        "properties": {"text": {"type": "text"},
                       "embedding": {"type": "dense_vector", "dims": 384, "similarity": "cosine"}}})
    try:
        texts = ["insulin resistance in muscle", "tumour growth in mice", "insulin and glucose"]
        for i, (text, vector) in enumerate(zip(texts, embedder.embed(texts).tolist())):
            es.index(index=name, id=str(i), document={"text": text, "embedding": vector})
        es.indices.refresh(index=name)
        _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
        body = {"query": {"match": {"text": "insulin"}}}
        answer = http.post(f"/{name}/_search?search_pipeline=t-hybrid", json=body)
        assert answer.status_code == 200
        meta = answer.json()["searchtune"]
        assert meta["hybrid"] is False and meta["fallback_reason"] == "model_mismatch"
        assert "other-model" in meta["fallback_detail"]
        assert _ids(answer.json()) == _ids(dict(es.search(index=name, **body)))
    finally:
        es.indices.delete(index=name, ignore_unavailable=True)


def test_eval_through_the_gateway_records_latency(gateway, http, vec_index, vec_dataset, embed_server, tmp_path):
    from searchtune.cli.main import app

    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    out = tmp_path / "gw.json"
    result = CliRunner().invoke(app, ["eval", str(vec_dataset), "--index", vec_index, "--es-url", gateway.url,
                                      "--search-pipeline", "t-hybrid", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    latency = payload["latency_ms"]
    assert latency["count"] == 20 and 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert payload["pipeline"]["fallbacks"] == 0
    systems = payload["systems"]
    assert systems["pipeline t-hybrid"]["metrics"]["Recall@100"] >= systems["BM25"]["metrics"]["Recall@100"]


def test_alias_swap_under_a_search_loop_fails_no_search(http, es, vec_index, embedder, embed_server):
    """Re-embed behind the alias while a bounded loop searches through the hybrid pipeline: every search answers
    with hybrid results, both physical indices serve some, and rollback moves the alias back."""
    from searchtune.vectors.build import update_vectors
    from searchtune.vectors.versions import list_versions, live_index, rollback

    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    before = live_index(es, vec_index)
    stop, served, failures = threading.Event(), [], []

    def loop():
        with httpx.Client(base_url=http.base_url, timeout=30) as client:
            deadline = time.monotonic() + 240
            while not stop.is_set() and time.monotonic() < deadline and len(served) < 3000:
                try:
                    answer = client.post(f"/{vec_index}/_search?search_pipeline=t-hybrid",
                                         json=_query("vitamin D deficiency", size=5))
                    meta = answer.json().get("searchtune", {})
                    if answer.status_code != 200 or not meta.get("hybrid") or len(answer.json()["hits"]["hits"]) != 5:
                        failures.append(f"{answer.status_code} {meta}")
                    served.append(answer.json()["hits"]["hits"][0]["_index"])
                except Exception as exc:  # noqa: BLE001 - counted, the assertion reports them
                    failures.append(repr(exc))

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        result = update_vectors(es, vec_index, embedder)
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert result.previous == before and live_index(es, vec_index) == result.index
    assert before in served and result.index in served
    versions = {v.index: v for v in list_versions(es, vec_index)}
    assert versions[result.index].live and versions[result.index].previous == before
    assert rollback(es, vec_index) == before and live_index(es, vec_index) == before


@pytest.fixture(scope="module")
def distilled_server(tmp_path_factory, es, vec_index, vec_dataset, embedder):
    """A cross-encoder distilled from the hybrid teacher on the slice (2 steps: a real, barely trained model),
    served by `searchtune serve` (torch, bf16 where the CPU has it: the fp32 head keeps its scores distinct)."""
    from searchtune.search.retriever import BM25Retriever
    from searchtune.serve.process import start_server_process
    from searchtune.train.distill import DistillSettings, distill_config, distill_reranker

    output = tmp_path_factory.mktemp("distilled") / "ce"
    config = distill_config({"max_length": 64, "max_steps": 2, "batch_size": 2, "precision": "fp32",
                             "dev_fraction": 0.2})
    outcome = distill_reranker(load_dataset(vec_dataset), BM25Retriever(es, vec_index, ["title", "text"]), embedder,
                               str(output), config=config, settings=DistillSettings(title_queries=4, list_size=4),
                               vector_index=(es, vec_index, "embedding"))
    teacher = outcome.record["data"]["distill"]["teacher"]
    assert teacher["title_queries"] == 4 and teacher["judged_lists"] >= 1
    assert "dev_fused_ndcg@10" in outcome.record["dev"]["final"] and outcome.record["global_step"] == 2
    server = start_server_process(str(output), port=0, backend="torch",
                                  env={"SEARCHTUNE_SERVE_MODEL_NAMES": "t-distilled"},
                                  extra_args=["--max-length", "64"])
    yield server
    server.stop()


def _hybrid_then_rerank(embed_server, distilled_server, weight: float) -> dict:
    return {"request_processors": [
        _hybrid(embed_server),
        {"neural_rerank": {"model_id": "t-distilled", "endpoint": f"{distilled_server.url}/v1/rerank", "top_k": 10,
                           "bm25_weight": weight, "timeout_ms": 20000}}]}


def test_distilled_reranker_fuses_with_the_hybrid_score_of_the_top_k(http, vec_index, embed_server,
                                                                       distilled_server):
    """hybrid k 50 -> neural_rerank top_k 10: only the fused top 10 are scored, and their order is the dev-tunable
    min-max fusion of the model score with the *hybrid* score (the previous stage, not BM25)."""
    from searchtune.normalize import minmax

    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    _put(http, "t-hybrid-ce", _hybrid_then_rerank(embed_server, distilled_server, 0.4))
    body = _query("insulin resistance in skeletal muscle", size=10)
    hybrid = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid", json=body).json()
    answer = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid-ce", json=body).json()
    assert answer["searchtune"]["hybrid"] is True and answer["searchtune"]["reranked"] is True
    head = answer["hits"]["hits"]
    # the reranked window is the hybrid top 10, not the 50 fused hits (which would let ranks 11-50 in)
    assert {h["_id"] for h in head} == set(_ids(hybrid)) and len(head) == 10
    assert all("_model_score" in h["fields"] for h in head)
    by_id = {h["_id"]: h["_score"] for h in hybrid["hits"]["hits"]}
    assert [h["fields"]["_hybrid_score"][0] for h in head] == pytest.approx([by_id[h["_id"]] for h in head])
    model = [h["fields"]["_model_score"][0] for h in head]
    previous = [h["fields"]["_hybrid_score"][0] for h in head]
    expected = [0.6 * m + 0.4 * p for m, p in zip(minmax(model), minmax(previous))]
    assert [h["_score"] for h in head] == pytest.approx(expected)
    assert [h["_score"] for h in head] == sorted(expected, reverse=True)
    assert len(set(model)) == len(model)  # the served scores of a barely trained head are not tied


def test_weight_one_on_the_previous_stage_is_exactly_hybrid(http, vec_index, embed_server, distilled_server):
    """The floor a dev-tuned weight guarantees: at weight 1 the reranker cannot change hybrid's order."""
    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server)]})
    _put(http, "t-hybrid-ce1", _hybrid_then_rerank(embed_server, distilled_server, 1.0))
    for text in ("insulin resistance in skeletal muscle", "tumour suppressor genes"):
        body = _query(text, size=10)
        hybrid = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid", json=body).json()
        answer = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid-ce1", json=body).json()
        assert answer["searchtune"]["reranked"] is True
        assert _ids(answer) == _ids(hybrid)


# last in the module: it stops the module's embedding server
def test_endpoint_killed_gives_bm25_order_with_the_reason(http, es, vec_index, embed_server):
    _put(http, "t-hybrid", {"request_processors": [_hybrid(embed_server, timeout_ms=2000)]})
    embed_server.stop()
    body = _query("statins and cardiovascular risk")
    answer = http.post(f"/{vec_index}/_search?search_pipeline=t-hybrid", json=body)
    assert answer.status_code == 200
    meta = answer.json()["searchtune"]
    assert meta["hybrid"] is False and meta["fallback_reason"] == "connect_error"
    assert _ids(answer.json()) == _ids(dict(es.search(index=vec_index, **body)))
    assert all(hit["_source"]["title"] is not None and "embedding" not in hit["_source"]
               for hit in answer.json()["hits"]["hits"]), "BM25's fallback page carries its sources"
