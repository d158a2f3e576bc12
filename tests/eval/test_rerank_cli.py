"""``searchtune eval --rerank``: real model, real SciFact subset in a real index, and a real `searchtune serve`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import Dataset, load_dataset
from searchtune.search.indexing import build_index

runner = CliRunner()


def _write_beir(ds: Dataset, root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n" for d in ds.corpus.values()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q.id, "text": q.text}) + "\n"
                                                for q in ds.queries.values()))
    for split, qrels in ds.qrels.items():
        rows = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def mini(scifact_dir: Path, es, tmp_path_factory):
    """20 train + 8 test SciFact queries, their judged documents and 150 real distractors, indexed."""
    full = load_dataset(scifact_dir)
    qrels = {s: {q: dict(full.qrels[s][q]) for q in list(full.split_queries(s))[:n]}
             for s, n in (("train", 20), ("test", 8))}
    keep = {d for s in qrels.values() for docs in s.values() for d in docs} | set(list(full.corpus)[:150])
    ds = Dataset(name="scifact-mini", corpus={d: full.corpus[d] for d in keep}, qrels=qrels,
                 queries={q: full.queries[q] for s in qrels.values() for q in s})
    folder = _write_beir(ds, tmp_path_factory.mktemp("scifact-mini"))
    index = f"t-train-eval-{uuid.uuid4().hex[:8]}"
    build_index(es, index, ds.corpus.values(), total=len(ds.corpus), recreate=True)
    yield folder, index
    es.indices.delete(index=f"{index}-*", ignore_unavailable=True)


def _eval(folder: Path, index: str, es_url: str, out: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["eval", str(folder), "--index", index, "--es-url", es_url, "--json", str(out),
                                 "--top-k", "20", "--rerank-top-k", "10", "--precision", "fp32", "--max-length", "128",
                                 *extra])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()) | {"_output": result.output}


def test_rerank_with_local_model_and_tuned_fusion(mini, es_url: str, base_model_path: str, tmp_path: Path) -> None:
    folder, index = mini
    payload = _eval(folder, index, es_url, tmp_path / "m.json", "--rerank", base_model_path, "--tune-fusion",
                    "--run", str(tmp_path / "fused.trec"))
    systems = payload["systems"]
    assert list(systems)[0] == "BM25" and len(systems) == 3
    rerank_name = next(n for n in systems if n.startswith("rerank"))
    fused_name = next(n for n in systems if n.startswith("fused"))
    assert payload["rerank"]["kind"] == "embedding"
    fusion = payload["fusion"]
    assert fusion["tuned_on"].startswith("train") and fusion["dev_queries"] == 2  # 10% of 20, never test queries
    assert fused_name.endswith(f"(w={fusion['weight']:.2f})")
    for name in (rerank_name, fused_name):
        assert systems[name]["num_queries"] == systems["BM25"]["num_queries"] == 8
        wl = payload["wins_losses"][name]
        assert wl["wins"] + wl["losses"] + wl["ties"] == 8
    # reranking only reorders BM25's list: recall at the retrieval depth cannot change
    assert systems[rerank_name]["metrics"]["Recall@100"] == pytest.approx(systems["BM25"]["metrics"]["Recall@100"])
    assert systems[rerank_name]["metrics"]["NDCG@10"] != systems["BM25"]["metrics"]["NDCG@10"]
    assert "wins" in payload["_output"]
    assert len((tmp_path / "fused.trec").read_text().splitlines()) > 0


def test_fixed_fusion_weight_zero_equals_bm25(mini, es_url: str, base_model_path: str, tmp_path: Path) -> None:
    folder, index = mini
    payload = _eval(folder, index, es_url, tmp_path / "m.json", "--rerank", base_model_path, "--fusion-weight", "0")
    fused = next(v for n, v in payload["systems"].items() if n.startswith("fused"))
    assert fused["metrics"]["NDCG@10"] == pytest.approx(payload["systems"]["BM25"]["metrics"]["NDCG@10"])


def test_fusion_without_rerank_is_an_error(mini, es_url: str) -> None:
    folder, index = mini
    result = runner.invoke(app, ["eval", str(folder), "--index", index, "--es-url", es_url, "--tune-fusion"])
    assert result.exit_code == 1 and "--rerank" in result.output


def test_rerank_through_searchtune_serve_matches_local(mini, es_url: str, base_model_path: str,
                                                       tmp_path: Path) -> None:
    """The HTTP path (Cohere-style /v1/rerank on a real `searchtune serve` process) ranks like the local model."""
    from searchtune.serve.process import start_server_process

    folder, index = mini
    local = _eval(folder, index, es_url, tmp_path / "local.json", "--rerank", base_model_path)
    with start_server_process(base_model_path, backend="torch",
                              env={"SEARCHTUNE_HOME": str(tmp_path / "home")},
                              extra_args=["--precision", "fp32", "--max-length", "128"]) as server:
        remote = _eval(folder, index, es_url, tmp_path / "remote.json", "--rerank", server.url)
    local_ndcg = next(v for n, v in local["systems"].items() if n.startswith("rerank"))["metrics"]["NDCG@10"]
    remote_ndcg = next(v for n, v in remote["systems"].items() if n.startswith("rerank"))["metrics"]["NDCG@10"]
    assert remote["rerank"]["model"] == server.url
    assert remote_ndcg == pytest.approx(local_ndcg, abs=1e-3)


def test_unreachable_rerank_url_fails_cleanly(mini, es_url: str, tmp_path: Path) -> None:
    from searchtune.serve.process import free_port

    folder, index = mini
    result = runner.invoke(app, ["eval", str(folder), "--index", index, "--es-url", es_url, "--top-k", "5",
                                 "--rerank", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "v1/rerank" in result.output
