"""`searchtune eval --search-pipeline` through the real gateway in front of the real node, with a real model server:
the pipeline's NDCG@10 must equal the in-process rerank of the same candidates by the same model."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import load_dataset
from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process
from searchtune.search.indexing import build_index
from searchtune.serve.process import start_server_process

runner = CliRunner()
INDEX = "t-evalpipe-cranfield"
TOP_K = 10


@pytest.fixture(scope="module")
def stack(es, es_url: str, datasets_dir: Path, base_model_path: str):
    ds = load_dataset(datasets_dir / "cranfield")
    build_index(es, INDEX, ds.corpus.values(), total=len(ds.corpus), recreate=True)
    server = start_server_process(base_model_path, backend="torch", extra_args=["--max-length", "128", "--precision", "fp32"])
    gateway = start_gateway_process(es_url, extra_args=["--pipeline-index", "t-evalpipe-pipelines", "--timeout", "60"],
                                    admin_key="t-evalpipe-admin")
    body = {"request_processors": [{"neural_rerank": {"model_id": "minilm", "endpoint": f"{server.url}/v1/rerank",
                                                      "field": "query_text", "top_k": TOP_K}}]}
    httpx.put(f"{gateway.url}/_search/pipeline/minilm-rerank", json=body, timeout=30,
              headers={ADMIN_KEY_HEADER: "t-evalpipe-admin"}).raise_for_status()
    yield gateway
    gateway.stop()
    server.stop()
    es.indices.delete(index=f"{INDEX}-*", ignore_unavailable=True)
    es.indices.delete(index="t-evalpipe-pipelines*", ignore_unavailable=True)


def test_eval_through_gateway_pipeline_matches_in_process_rerank(stack, datasets_dir: Path, base_model_path: str,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(datasets_dir / "cranfield"), "--index", INDEX, "--es-url", stack.url,
                                 "--top-k", str(TOP_K), "--rerank", base_model_path, "--rerank-top-k", str(TOP_K),
                                 "--precision", "fp32", "--max-length", "128", "--search-pipeline", "minilm-rerank",
                                 "--max-queries", "40", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    systems = payload["systems"]
    in_process = next(v for k, v in systems.items() if k.startswith("rerank"))
    through = systems["pipeline minilm-rerank"]
    assert through["num_queries"] == in_process["num_queries"] == systems["BM25"]["num_queries"] == 40
    assert through["metrics"]["NDCG@10"] == pytest.approx(in_process["metrics"]["NDCG@10"], abs=2e-3)
    assert through["metrics"]["NDCG@10"] != pytest.approx(systems["BM25"]["metrics"]["NDCG@10"], abs=1e-4)
    assert payload["pipeline"]["fallbacks"] == 0


def test_unknown_pipeline_is_a_clear_failure(stack, datasets_dir: Path) -> None:
    result = runner.invoke(app, ["eval", str(datasets_dir / "cranfield"), "--index", INDEX, "--es-url", stack.url,
                                 "--top-k", "5", "--search-pipeline", "no-such-pipeline"])
    assert result.exit_code == 1
    assert "no-such-pipeline" in result.output
