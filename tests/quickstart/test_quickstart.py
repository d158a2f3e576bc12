"""The main job end to end on a small SciFact subset: real Elasticsearch, real training (a few steps), the model
served from the registry in its own process, the gateway in its own process, and the report opened in Chromium.

The subset keeps SciFact's real text: 40 train and 8 test queries, every document they judge and 600 others. On
the whole 5,183-document corpus the two runs spent most of their 4.4 minutes embedding documents no query reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.quickstart.rerank import MIN_DEV_GAIN

runner = CliRunner()
INDEX = "t-qs-scifact"
TINY = ["--max-train-queries", "24", "--max-test-queries", "8", "--rerank-top-k", "10", "--max-length", "64",
        "--train-option", "batch_size=8"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, es, monkeypatch_module):
    path = tmp_path_factory.mktemp("quickstart")
    # a user's own registry: the quickstart must use WORKDIR/store for every stage and leave this one alone
    # (with SEARCHTUNE_STORE pointing at WORKDIR/store, a stage that forgot the work folder's store passed here
    # and failed on a fresh machine)
    monkeypatch_module.setenv("SEARCHTUNE_STORE", str(path / "users-own-store"))
    yield path
    es.indices.delete(index=f"{INDEX}-*", ignore_unavailable=True)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def subset_dir(scifact_dir: Path, tmp_path_factory) -> Path:
    from searchtune.data import load_dataset
    from searchtune.data.split import sample_subset
    from searchtune.data.writers import write_beir

    subset = sample_subset(load_dataset(scifact_dir), {"train": 40, "test": 8}, distractors=600, name="scifact")
    return write_beir(subset, tmp_path_factory.mktemp("qs-data") / "scifact" / "beir_format_derived")


@pytest.fixture(scope="module")
def first_run(workdir: Path, es_url: str, subset_dir: Path):
    result = runner.invoke(app, ["quickstart", "--dataset", str(subset_dir), "--workdir", str(workdir),
                                 "--es-url", es_url, "--index", INDEX, "--budget-minutes", "4",
                                 "--train-option", "max_steps=4", *TINY])
    return result


def test_quickstart_writes_every_artifact(first_run, workdir: Path, es) -> None:
    assert first_run.exit_code == 0, first_run.output
    report = workdir / "report"
    for name in ("report.md", "report.html", "report.json", "charts/metrics.png", "charts/winloss.png",
                 "charts/latency.png"):
        assert (report / name).is_file(), f"missing {name}"
    assert (workdir / "model" / "training.json").is_file()
    training = json.loads((workdir / "model" / "training.json").read_text())
    # the embedder is validated once, by the stack choice, not also during training (quickstart/training.py)
    assert training["dev"]["history"] == [] and training["data"]["dev_queries"]
    assert not (report / "charts" / "training.png").exists()
    assert "validated on dev in the stack choice" in " ".join(first_run.output.split())  # rich wraps lines
    assert (workdir / "train-triplets.jsonl").stat().st_size > 0
    assert (workdir / "store" / "datasets" / "scifact").is_dir()
    assert not (workdir / "users-own-store").exists(), "the quickstart wrote into the user's SEARCHTUNE_STORE"
    summary = json.loads((report / "report.json").read_text())
    systems = summary["systems"]
    assert list(systems)[0] == "BM25" and len(systems) == 2
    deployment = summary["deployment"]   # 28 judged training queries: 5-fold CV chose between the zero-shot stacks
    assert deployment["mode"] == "kfold" and deployment["folds"] == 5 and deployment["queries"] == 28
    assert set(deployment["candidates"]) == {"BM25", "zero-shot hybrid"} and "tuned hybrid" in deployment["left_out"]
    winner = deployment["winner"]
    means = {n: c["mean_ndcg@10"] for n, c in deployment["candidates"].items()}
    assert means[winner] == max(means.values())
    assert ("zero-shot hybrid" if winner == "zero-shot hybrid" else "BM25 (plain pipeline)") in list(systems)[1]
    assert all(s["num_queries"] == 8 for s in systems.values())
    assert all(0.0 <= s["NDCG@10"] <= 1.0 for s in systems.values())
    assert summary["latency_ms"]["count"] == 8
    assert summary["peak_memory_gib"] > 0.1
    assert set(summary["stage_seconds"]) >= {"index", "train", "choose stack", "evaluate through gateway", "report"}
    md = (report / "report.md").read_text()
    # --task auto (the default): both models fit the 4-minute cap's estimate, so a cross-encoder is distilled from
    # the hybrid stack just deployed and goes behind it only if it beats it on the same dev queries
    assert deployment["task"] == "both" and "within the 4 min cap" in deployment["task_reason"]
    assert deployment["task_reason"] in md
    _assert_reranker_follows_its_verdict(workdir, winner, deployment, list(systems)[1], md, summary)
    assert "## Example queries" in md and "## Reproduce" in md
    assert f"deployed stack: {winner}" in md and f"deployed stack: {winner}" in first_run.output
    if winner != "BM25":   # the deployed hybrid really ran: the endpoint answered the pipeline's model_id
        assert "no search fell back to BM25 order" in md, md
    assert "95% CI" in md
    schedule = summary["training"]["schedule"]  # a fixed amount; the 4-minute cap did not cut it
    assert schedule["planned_steps"] == schedule["steps_done"] == 4 and not schedule["cut_by_time_budget"]
    assert "Warning:" not in md and summary["training"]["throughput"]["pairs_per_second"] > 0
    assert "report:" in first_run.output and "peak memory" in first_run.output
    # the trained model went into the registry, but prod names only a deployed model: this one was not
    index = json.loads((workdir / "store" / "models" / "custom-rerank-v1" / "index.json").read_text())
    assert "prod" not in index.get("aliases", {})
    _assert_index_follows(es, winner, "custom-rerank-v1@1")


def _assert_reranker_follows_its_verdict(workdir: Path, winner: str, deployment: dict, label: str, md: str,
                                         summary: dict) -> None:
    """``--task both``: the cross-encoder learnt from the deployed stack (its weight), and what was deployed,
    promoted and reported is what its dev verdict said."""
    if winner == "BM25":
        assert "cross-encoder not trained" in md and "cross_encoder" not in deployment
        return
    ce = deployment["cross_encoder"]
    training = json.loads((workdir / "reranker" / "training.json").read_text())
    assert training["data"]["recipe"] == "distill" and training["global_step"] == 4
    assert training["data"]["distill"]["teacher"]["weight"] == pytest.approx(deployment["deployed_weight"])
    assert ce["deployed"] == (ce["dev"]["dev_fused_ndcg@10"] - ce["teacher"]["dev_ndcg@10"] >= MIN_DEV_GAIN)
    assert ("+ cross-encoder" in label) == ce["deployed"]
    assert ("cross-encoder deployed behind hybrid" in md) == ce["deployed"]
    assert "train cross-encoder" in summary["stage_seconds"]
    index = json.loads((workdir / "store" / "models" / "custom-rerank-v1-reranker" / "index.json").read_text())
    assert (index.get("aliases", {}).get("prod") == 1) == ce["deployed"]
    # the Reproduce block puts the pipeline that was deployed: the cross-encoder's server and step only if it was
    reproduce = md.split("## Reproduce", 1)[1]
    assert "127.0.0.1:8080/v1/embeddings" in reproduce
    assert ("neural_rerank" in reproduce) == ("127.0.0.1:8081/" in reproduce) == ce["deployed"]
    assert ("custom-rerank-v1-reranker@prod --port 8081" in reproduce) == ce["deployed"]


def _assert_index_follows(es, winner: str, tuned_id: str) -> None:
    """The searched index holds the winner's vectors (none needed for BM25: its pipeline has no processor)."""
    from searchtune.models import default_base_model
    from searchtune.vectors.identity import model_fingerprint
    from searchtune.vectors.mapping import read_vector_meta

    meta = read_vector_meta(dict(es.indices.get_mapping(index=INDEX)))
    if winner == "tuned hybrid":
        assert meta["model"]["id"] == tuned_id and meta["max_length"] == 64
    elif winner == "zero-shot hybrid":
        assert meta["model"]["fingerprint"] == model_fingerprint(default_base_model()) and meta["max_length"] == 64


def test_report_numbers_equal_eval_of_the_same_index(first_run, workdir: Path, es_url: str, subset_dir: Path) -> None:
    """Re-measure BM25 with the eval command on the same queries: the report must carry the same number."""
    assert first_run.exit_code == 0, first_run.output
    summary = json.loads((workdir / "report" / "report.json").read_text())
    per_query = summary["per_query"]["BM25"]
    from searchtune.data import load_dataset
    from searchtune.eval.metrics import evaluate
    from searchtune.search.client import es_client
    from searchtune.search.retrieval import bm25_search

    ds = load_dataset(subset_dir)
    queries = {q: ds.queries[q] for q in per_query}
    run, _ = bm25_search(es_client(es_url), INDEX, queries, top_k=100)
    again = evaluate({q: ds.split_qrels("test")[q] for q in per_query}, run)
    assert again.aggregate["NDCG@10"] == pytest.approx(summary["systems"]["BM25"]["NDCG@10"], abs=1e-9)


def test_second_run_reuses_the_index(first_run, workdir: Path, es_url: str, subset_dir: Path, es) -> None:
    assert first_run.exit_code == 0, first_run.output
    concrete_before = set(es.indices.get_alias(name=INDEX))
    cached = set((workdir / "cache").glob("vectors-*.npy"))
    assert len(cached) == 1   # the first run's base-model corpus vectors
    result = runner.invoke(app, ["quickstart", "--dataset", str(subset_dir), "--workdir", str(workdir),
                                 "--es-url", es_url, "--index", INDEX, "--budget-minutes", "2", "--validation", "dev",
                                 "--train-option", "max_steps=1", *TINY])
    assert result.exit_code == 0, result.output
    assert "reused" in result.output  # the corpus was not indexed again
    assert set((workdir / "cache").glob("vectors-*.npy")) == cached   # nor embedded again with the base model
    summary = json.loads((workdir / "report" / "report.json").read_text())
    deployment = summary["deployment"]   # the dev carve (4 queries) decides, the tuned model among the candidates
    assert deployment["mode"] == "dev" and deployment["queries"] == 4
    # a 2-minute cap is below the estimate of both models: --task auto trains the embedder only, and says why
    assert deployment["task"] == "embed" and "over the 2 min cap" in deployment["task_reason"]
    assert "cross_encoder" not in deployment
    assert set(deployment["candidates"]) == {"BM25", "zero-shot hybrid", "tuned hybrid"}
    winner = deployment["winner"]
    index = json.loads((workdir / "store" / "models" / "custom-rerank-v1" / "index.json").read_text())
    assert index["aliases"].get("prod") == (2 if winner == "tuned hybrid" else None)
    # the version carries the dev validation the choice made of it (training did not score dev)
    metrics = index["versions"]["2"]["metrics"]
    assert metrics["dev_hybrid_ndcg@10"] == pytest.approx(deployment["candidates"]["tuned hybrid"]["mean_ndcg@10"],
                                                          abs=1e-4)
    from searchtune.vectors.versions import live_index

    if winner != "BM25":   # a new physical index with the winner's vectors, the alias moved
        assert live_index(es, INDEX) not in concrete_before
    _assert_index_follows(es, winner, "custom-rerank-v1@2")


def test_report_screenshot_shows_charts(first_run, workdir: Path, screenshot, colour_count, tmp_path: Path) -> None:
    assert first_run.exit_code == 0, first_run.output
    shot = screenshot(workdir / "report" / "report.html", tmp_path / "quickstart.png")
    assert colour_count(shot, (31, 119, 180)) > 50, "metrics chart (blue bars) not visible"
    assert colour_count(shot, (255, 127, 14)) > 50, "metrics chart (orange bars) not visible"


def test_rerank_task_deploys_hybrid_then_the_distilled_cross_encoder(es, es_url: str, subset_dir: Path,
                                                                     tmp_path: Path, monkeypatch) -> None:
    """``--task rerank`` end to end: the base embedder's vectors indexed, a cross-encoder distilled from the hybrid
    teacher (2 steps), both models served in their own processes, and every test search through the gateway ran
    ``hybrid`` then ``neural_rerank`` (no fallback to BM25 order)."""
    index = "t-qs-rerank"
    monkeypatch.setenv("SEARCHTUNE_STORE", str(tmp_path / "users-own-store"))
    workdir = tmp_path / "qs-rerank"
    try:
        result = runner.invoke(app, ["quickstart", "--task", "rerank", "--dataset", str(subset_dir), "--workdir",
                                     str(workdir), "--es-url", es_url, "--index", index, "--budget-minutes", "4",
                                     "--train-option", "max_steps=2", *TINY])
        assert result.exit_code == 0, result.output
        training = json.loads((workdir / "model" / "training.json").read_text())
        assert training["data"]["recipe"] == "distill" and training["global_step"] == 2
        assert training["data"]["distill"]["teacher"]["weight"] is not None
        summary = json.loads((workdir / "report" / "report.json").read_text())
        assert list(summary["systems"])[0] == "BM25" and summary["latency_ms"]["count"] == 8
        md = (workdir / "report" / "report.md").read_text()
        assert "no search fell back to BM25 order" in md, md
        from searchtune.vectors.mapping import read_vector_meta

        meta = read_vector_meta(dict(es.indices.get_mapping(index=index)))
        assert meta["max_length"] == 64   # the hybrid side searches the base embedder's vectors
        index_json = json.loads((workdir / "store" / "models" / "custom-rerank-v1" / "index.json").read_text())
        card = index_json["versions"]["1"]
        assert "dev_fusion_weight" in card["metrics"]  # the weight the pipeline's bm25_weight came from
    finally:
        es.indices.delete(index=f"{index}-*", ignore_unavailable=True)
