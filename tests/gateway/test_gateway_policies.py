"""The gateway's security policies as pure functions: which secrets a pipeline may reference, which endpoints it
may call, which requests reach its pipelines index, what counts as an endpoint failure (issue 12)."""

from __future__ import annotations

import gzip

import pytest

from searchtune.gateway.breaker import CLOSED, OPEN, CircuitBreaker, is_endpoint_failure
from searchtune.gateway.credentials import redact_url, split_credentials
from searchtune.gateway.endpoints import EndpointPolicy
from searchtune.gateway.index_guard import ProtectedIndex, decoded_body, refusal_reason
from searchtune.gateway.pipelines import PipelineError, parse_pipeline
from searchtune.gateway.policy import vet_pipeline
from searchtune.gateway.secrets import SecretPolicy


def _pipeline(endpoint: str = "http://127.0.0.1:8080/v1/rerank", headers: dict | None = None):
    return parse_pipeline("p", {"request_processors": [{"neural_rerank": {"endpoint": endpoint,
                                                                          "headers": headers or {}}}]})


@pytest.mark.parametrize("headers, needle", [
    ({"Authorization": "Bearer $SECRET_TEST"}, "headers.Authorization: references $SECRET_TEST"),
    ({"X-Home": "${HOME}"}, "headers.X-Home: references $HOME"),
    ({"Authorization": "Bearer sk-literal-123"}, "headers.Authorization: holds a literal credential"),
    ({"X-Api-Key": "abc"}, "headers.X-Api-Key: holds a literal credential"),
])
def test_pipeline_headers_are_vetted(headers, needle):
    with pytest.raises(PipelineError) as info:
        vet_pipeline(_pipeline(headers=headers), EndpointPolicy())
    assert needle in str(info.value) and "request_processors[0].neural_rerank" in str(info.value)


def test_allowed_references_and_plain_headers_pass():
    vet_pipeline(_pipeline(headers={"Authorization": "Bearer $SEARCHTUNE_SECRET_KEY", "X-Team": "search",
                                    "Accept": "application/json"}), EndpointPolicy())
    assert SecretPolicy(("BAILIAN_",)).problems({"Authorization": "Bearer $BAILIAN_API_KEY"}) == []


@pytest.mark.parametrize("endpoint, allowed", [
    ("http://127.0.0.1:8080/v1/rerank", True), ("http://127.9.9.9/rerank", True), ("http://[::1]:80/rerank", True),
    ("http://localhost:8080/v1/rerank", True), ("http://localhost.evil.example/v1/rerank", False),
    ("http://10.1.2.3:8080/v1/rerank", False), ("https://api.vendor.example/v1/rerank", False),
    ("http://2130706433/v1/rerank", False), ("http://user:pw@127.0.0.1:8080/v1/rerank", False),
    ("ftp://127.0.0.1/rerank", False),
])
def test_endpoint_allow_list_default_is_loopback(endpoint, allowed):
    assert EndpointPolicy().allows(endpoint) is allowed


def test_operator_adds_endpoints():
    policy = EndpointPolicy(["*.aliyuncs.com", "10.0.0.0/8", "models.internal:8080", "https://api.vendor.example"])
    assert policy.allows("https://dashscope.aliyuncs.com/api/v1/services/rerank")
    assert policy.allows("http://10.1.2.3:9000/v1/rerank")
    assert policy.allows("http://models.internal:8080/v1/rerank")
    assert not policy.allows("http://models.internal:8081/v1/rerank")
    assert policy.allows("https://api.vendor.example/v2/rerank")
    assert not policy.allows("http://api.vendor.example/v2/rerank")  # scheme pinned
    with pytest.raises(PipelineError, match="neural_rerank.endpoint: http://evil.example/v1/rerank is not an allowed"):
        vet_pipeline(_pipeline("http://evil.example/v1/rerank"), policy)


def test_credentials_split_from_the_url_and_never_shown():
    url, credentials = split_credentials("http://elastic:Pa55word@127.0.0.1:9200")
    assert url == "http://127.0.0.1:9200" and credentials.authorization.startswith("Basic ")
    assert "Pa55word" not in repr(credentials) and redact_url("http://elastic:Pa55word@h:1") == "http://***@h:1"
    assert split_credentials("http://h:9200", api_key="k1")[1].authorization == "ApiKey k1"


GUARD = ProtectedIndex("searchtune-pipelines")
GUARD.aliases = frozenset({"sneaky"})  # an alias made on the cluster directly: wildcards reaching it are refused


@pytest.mark.parametrize("method, path, query, body", [
    ("GET", "/searchtune-pipelines/_doc/pipeline:x", "", b""),
    ("PUT", "/searchtune-pipelines/_doc/pipeline:x", "", b"{}"),
    ("DELETE", "/searchtune-pipelines", "", b""),
    ("POST", "/searchtune-pipelines,other/_search", "", b"{}"),
    ("GET", "/searchtune-*/_search", "expand_wildcards=all", b""),
    ("GET", "/_all/_search", "expand_wildcards=hidden", b""),
    ("GET", "/_search", "expand_wildcards=open,hidden", b""),
    ("GET", "/sneaky/_search", "", b""),
    ("GET", "/sneak*/_search", "", b""),
    ("GET", "/<searchtune-pipelines>/_search", "", b""),
    ("POST", "/_bulk", "", b'{"index":{"_index":"searchtune-pipelines","_id":"pipeline:x"}}\n{"kind":"pipeline"}\n'),
    ("POST", "/_mget", "", b'{"docs":[{"_index":"searchtune-pipelines","_id":"pipeline:x"}]}'),
    ("POST", "/_msearch", "", b'{"index":"*","expand_wildcards":"all"}\n{}\n'),
    ("POST", "/_aliases", "", b'{"actions":[{"add":{"index":"searchtune-*","alias":"x"}}]}'),
    ("POST", "/_reindex", "", b'{"source":{"index":"searchtune-pipelines"},"dest":{"index":"copy"}}'),
    ("POST", "/_sql", "", b'{"query":"SELECT * FROM \\"searchtune-pipelines\\""}'),
    ("PUT", "/searchtune-pipelines/_alias/x", "", b""),
])
def test_guard_refuses_every_route_to_the_pipelines_index(method, path, query, body):
    assert refusal_reason(GUARD, method, path, query, body) is not None


@pytest.mark.parametrize("method, path, query, body", [
    ("GET", "/catalog/_search", "", b""),
    ("GET", "/*/_search", "", b""),  # hidden indices are not expanded
    ("GET", "/searchtune-*/_search", "", b""),
    ("GET", "/_search", "", b""),
    ("POST", "/_bulk", "", b'{"index":{"_index":"docs"}}\n{"text":"about searchtune-pipelines"}\n'),
    ("GET", "/_cat/indices", "expand_wildcards=all", b""),
    ("GET", "/_search/pipeline/x", "", b""),
    ("POST", "/_search", "", b'{"query":{"match":{"text":"searchtune-pipelines"}}}'),
])
def test_guard_lets_other_requests_through(method, path, query, body):
    assert refusal_reason(ProtectedIndex("searchtune-pipelines"), method, path, query, body) is None


def test_guard_reads_compressed_bodies():
    packed = gzip.compress(b'{"docs":[{"_index":"searchtune-pipelines","_id":"x"}]}')
    assert refusal_reason(GUARD, "POST", "/_mget", "", decoded_body(packed, "gzip", 1 << 20)) is not None
    assert decoded_body(gzip.compress(b"x" * 5000), "gzip", 1000) is None  # past the limit: cannot be checked
    assert refusal_reason(GUARD, "POST", "/_mget", "", None) is not None


def test_only_endpoint_faults_open_the_circuit():
    assert not is_endpoint_failure("http_413") and not is_endpoint_failure("http_400")
    assert is_endpoint_failure("http_429") and is_endpoint_failure("http_503") and is_endpoint_failure("timeout")
    breaker = CircuitBreaker(failure_threshold=2)
    for _ in range(5):
        breaker.record_error("http_413")
    assert breaker.state != OPEN
    breaker.record_error("connect_error")
    breaker.record_error("connect_error")
    assert breaker.state == OPEN and not breaker.allow()
    breaker.record_error("http_400")  # the recovery probe got an answer (a refusal is one too)
    assert breaker.state == CLOSED and breaker.allow()
