"""The managed OpenSearch node: assembled from Maven Central artifacts, it must carry the whole rerank plugin chain
(job-scheduler <- ml-commons, lang-painless <- k-NN <- neural-search) and the ml-commons settings for a local
endpoint. Also the pure helpers (JDK choice, connector body) against the documented contract."""

from __future__ import annotations

import httpx
import pytest

from searchtune.search.client import detect_product, opensearch_client, search_client
from searchtune.nodes.java import JavaNotFoundError, find_java_home, java_major_version
from searchtune.search.opensearch_ml import (BUILTIN_POST_PROCESS, POST_PROCESS_SCRIPT, ClientConfig, connector_body,
                                             pipeline_body, rerank_url)
from searchtune.nodes.opensearch_node import OPENSEARCH, OPENSEARCH_PLUGINS


def test_node_runs_the_rerank_plugin_chain(opensearch_url: str) -> None:
    plugins = httpx.get(f"{opensearch_url}/_cat/plugins?format=json", timeout=30).json()
    names = {p["component"]: p["version"] for p in plugins}
    assert set(names) == {"opensearch-job-scheduler", "opensearch-ml", "opensearch-knn", "opensearch-neural-search"}
    assert set(names.values()) == {"2.19.1.0"}
    nodes = httpx.get(f"{opensearch_url}/_nodes/plugins", timeout=30).json()["nodes"]
    modules = {m["name"] for node in nodes.values() for m in node["modules"]}
    assert "lang-painless" in modules  # built from the Maven jar: k-NN extends it


def test_node_settings_admit_a_local_endpoint(opensearch_url: str) -> None:
    settings = httpx.get(f"{opensearch_url}/_cluster/settings?include_defaults=true&flat_settings=true",
                         timeout=30).json()
    flat = {**settings["defaults"], **settings["persistent"], **settings["transient"]}
    assert flat["plugins.ml_commons.only_run_on_ml_node"] == "false"
    assert flat["plugins.ml_commons.connector.private_ip_enabled"] == "true"
    regexes = flat["plugins.ml_commons.trusted_connector_endpoints_regex"]
    import re

    assert any(re.match(rx, "http://127.0.0.1:8080/v1/rerank") for rx in regexes)
    assert not any(re.match(rx, "http://10.0.0.1:8080/v1/rerank") for rx in regexes)


def test_painless_works_on_the_node(opensearch_url: str) -> None:
    client = opensearch_client(opensearch_url)
    name = "st8-painless"
    client.index(index=name, id="1", body={"n": 3}, refresh=True)
    try:
        hits = client.search(index=name, body={"query": {"script_score": {
            "query": {"match_all": {}}, "script": {"source": "doc['n'].value * 2"}}}})["hits"]["hits"]
        assert hits[0]["_score"] == 6.0
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)


def test_detect_product(opensearch_url: str, es_url: str) -> None:
    assert detect_product(opensearch_url) == "opensearch"
    assert detect_product(es_url) == "elasticsearch"
    assert type(search_client(opensearch_url)).__module__.startswith("opensearchpy")
    assert type(search_client(es_url)).__module__.startswith("elasticsearch")
    with pytest.raises(ConnectionError):
        detect_product("http://127.0.0.1:1")


def test_plugins_are_version_matched_and_ordered_by_dependency() -> None:
    versions = {coord.split(":")[2] for coord in OPENSEARCH_PLUGINS}
    assert versions == {f"{OPENSEARCH.version}.0"}
    order = [coord.split(":")[1] for coord in OPENSEARCH_PLUGINS]
    assert order.index("opensearch-job-scheduler") < order.index("opensearch-ml-plugin")
    assert order.index("opensearch-knn") < order.index("neural-search")


def test_java_cap_skips_newer_jdks(monkeypatch) -> None:
    """OpenSearch 2.x needs the Security Manager (gone in Java 24): the cap must steer away from a newer JDK even when
    JAVA_HOME points at it."""
    from pathlib import Path

    newer = [p for p in Path("/usr/lib/jvm").iterdir() if not p.is_symlink() and (java_major_version(p) or 0) > 21]
    if newer:
        monkeypatch.setenv("JAVA_HOME", str(newer[0]))
    try:
        home = find_java_home(OPENSEARCH.min_java, OPENSEARCH.max_java)
    except JavaNotFoundError as exc:
        assert "17..21" in str(exc)
        return
    assert 17 <= java_major_version(home) <= 21


def test_connector_body_follows_the_contract() -> None:
    body = connector_body("n", "http://127.0.0.1:8080", client_config=ClientConfig(connection_timeout_ms=1500,
                                                                                   read_timeout_s=7))
    action = body["actions"][0]
    assert action["url"] == "http://127.0.0.1:8080/v1/rerank"
    assert action["pre_process_function"] == "connector.pre_process.cohere.rerank"
    assert action["post_process_function"] == POST_PROCESS_SCRIPT
    assert "${parameters.documents}" in action["request_body"] and '"${parameters.query}"' in action["request_body"]
    assert body["client_config"] == {"connection_timeout": 1500, "read_timeout": 7, "max_connection": 30,
                                     "max_retry_times": 0}
    assert "Authorization" not in action["headers"]
    keyed = connector_body("n", "http://127.0.0.1:8080/v1/rerank", api_key="k", post_process="builtin")
    assert keyed["actions"][0]["post_process_function"] == BUILTIN_POST_PROCESS
    assert keyed["actions"][0]["headers"]["Authorization"] == "Bearer ${credential.api_key}"
    assert keyed["credential"] == {"api_key": "k"}
    assert rerank_url("http://h:1/") == "http://h:1/v1/rerank"
    with pytest.raises(ValueError, match="model-endpoint"):
        rerank_url("127.0.0.1:8080")
    processor = pipeline_body("m1", ["title", "text"])["response_processors"][0]["rerank"]
    assert processor == {"ml_opensearch": {"model_id": "m1"}, "context": {"document_fields": ["title", "text"]}}
