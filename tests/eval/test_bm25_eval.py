"""BM25 evaluation through the real node, and the metric layer on hand-checkable runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import load_dataset
from searchtune.eval.metrics import evaluate
from searchtune.search.indexing import build_index

runner = CliRunner()
INDEX = "t-found-eval-cran"


@pytest.fixture(scope="module")
def cran_index(es, datasets_dir: Path):
    ds = load_dataset(datasets_dir / "cranfield")
    build_index(es, INDEX, ds.corpus.values(), total=len(ds.corpus), recreate=True)
    yield INDEX
    es.indices.delete(index=f"{INDEX}-*", ignore_unavailable=True)


def test_eval_cli_cranfield(es_url: str, datasets_dir: Path, cran_index: str, tmp_path: Path) -> None:
    out_json, out_run = tmp_path / "m.json", tmp_path / "bm25.trec"
    result = runner.invoke(app, ["eval", str(datasets_dir / "cranfield"), "--index", cran_index, "--es-url", es_url,
                                 "--json", str(out_json), "--run", str(out_run), "--fields", "title^2,text"])
    assert result.exit_code == 0, result.output
    assert "NDCG@10" in result.output
    payload = json.loads(out_json.read_text())
    bm25 = payload["systems"]["BM25"]
    assert bm25["num_queries"] == 225
    assert len(bm25["per_query"]) == 225
    # unstemmed BM25 on Cranfield lands around 0.3 NDCG@10; far outside means broken qrels mapping or retrieval
    assert 0.2 < bm25["metrics"]["NDCG@10"] < 0.5
    assert 0.5 < bm25["metrics"]["Recall@100"] <= 1.0
    lines = out_run.read_text().splitlines()
    assert len(lines) == 225 * 100
    qid, q0, did, rank, score, tag = lines[0].split()
    assert (q0, rank, tag) == ("Q0", "1", "bm25")


def test_eval_unknown_split_is_a_clear_error(es_url: str, datasets_dir: Path, cran_index: str) -> None:
    result = runner.invoke(app, ["eval", str(datasets_dir / "cranfield"), "--index", cran_index, "--split", "dev",
                                 "--es-url", es_url])
    assert result.exit_code == 1
    assert "no split 'dev'" in result.output


def test_metrics_perfect_empty_and_graded() -> None:
    qrels = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"x": 1}, "q3": {"z": 0}}
    perfect = evaluate(qrels, {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"x": 1.0}})
    assert perfect.num_queries == 2  # q3 has no relevant document
    assert perfect.aggregate["NDCG@10"] == pytest.approx(1.0)
    assert perfect.aggregate["MRR@10"] == pytest.approx(1.0)
    swapped = evaluate(qrels, {"q1": {"b": 3.0, "a": 2.0}, "q2": {}})
    assert swapped.per_query["q2"]["NDCG@10"] == 0.0  # judged but nothing retrieved counts as zero
    assert 0.0 < swapped.per_query["q1"]["NDCG@10"] < 1.0
    assert swapped.per_query["q1"]["MRR@10"] == pytest.approx(1.0)
    assert evaluate(qrels, {}).aggregate["NDCG@10"] == 0.0
