"""Unit tests of the client-compatibility parts that are pure functions: body decoding (codings, size cap), default
pipeline choice from a ``_resolve/index`` answer, and which pipeline definitions the gateway runs itself."""

from __future__ import annotations

import gzip
import zlib

import pytest

from searchtune.gateway.encoding import BodyTooLarge, decode_body
from searchtune.gateway.native_pipelines import runs_in_gateway
from searchtune.gateway.resolve import pipeline_for_targets, targets_from_resolve

BODY = b'{"query": {"match": {"text": "tumour"}}}'


def test_codings_are_undone():
    assert decode_body(gzip.compress(BODY), "gzip") == BODY
    assert decode_body(gzip.compress(BODY[:10]) + gzip.compress(BODY[10:]), "x-gzip") == BODY  # two members
    assert decode_body(zlib.compress(BODY), "deflate") == BODY
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw.compress(BODY) + raw.flush(), "deflate") == BODY
    assert decode_body(zlib.compress(gzip.compress(BODY)), "gzip, deflate") == BODY  # applied in order
    assert decode_body(BODY, "identity") == BODY


def test_bad_and_oversized_bodies_are_refused():
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(BodyTooLarge):
        decode_body(bomb, "gzip", limit=1_000_000)
    assert len(decode_body(bomb, "gzip", limit=5_000_000)) == 5_000_000
    with pytest.raises(zlib.error):
        decode_body(gzip.compress(BODY)[:-6], "gzip")  # truncated
    with pytest.raises(ValueError, match=r"Content-Encoding \[br\]"):
        decode_body(BODY, "br")


RESOLVED = {"indices": [{"name": "books-1", "aliases": ["shelf"]}],
            "aliases": [{"name": "shelf", "indices": ["books-1", "books-2"]}],
            "data_streams": [{"name": "logs", "backing_indices": [".ds-logs-1"]}]}


def test_default_follows_resolution():
    targets = targets_from_resolve(RESOLVED)
    assert targets == {"books-1": {"books-1", "shelf"}, "books-2": {"shelf"}, ".ds-logs-1": {"logs"}}
    shelf_only = {k: v for k, v in targets.items() if k != ".ds-logs-1"}
    assert pipeline_for_targets(shelf_only, {"shelf": "p"}) == "p"
    assert pipeline_for_targets(shelf_only, {"books-1": "p", "books-2": "p"}) == "p"
    assert pipeline_for_targets(shelf_only, {"books-1": "q", "shelf": "p"}) is None  # books-1's own differs
    assert pipeline_for_targets(targets, {"shelf": "p"}) is None  # the data stream has none
    assert pipeline_for_targets(targets, {"shelf": "p", "logs": "p"}) == "p"
    assert pipeline_for_targets({"a": {"x", "y"}}, {"x": "p", "y": "q"}) is None  # two aliases disagree


def test_which_pipelines_the_gateway_runs():
    assert runs_in_gateway({"request_processors": [{"neural_rerank": {"endpoint": "http://h/v1/rerank"}}]}, {})
    ml = {"response_processors": [{"rerank": {"ml_opensearch": {"model_id": "m1"},
                                              "context": {"document_fields": ["text"]}}}]}
    assert not runs_in_gateway(ml, {})  # an ml-commons model: OpenSearch's
    assert runs_in_gateway(ml, {"m1": "http://h/v1/rerank"})
    assert not runs_in_gateway({"phase_results_processors": [{"normalization-processor": {}}]}, {})
    assert not runs_in_gateway({"request_processors": [{"filter_query": {"query": {"match_all": {}}}}]}, {})
