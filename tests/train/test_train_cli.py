"""End-to-end training through the CLI: real model (all-MiniLM-L6-v2), real SciFact subset, real ES, a few steps."""

from __future__ import annotations

import json
from pathlib import Path


import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import load_dataset
from searchtune.registry.registry import ModelRegistry
from searchtune.scoring import detect_model_kind, load_scorer
TINY = ["--max-length", "32", "--batch-size", "4", "--precision", "fp32"]

runner = CliRunner()


def _train(*args: str) -> dict:
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    return result


def _record(folder: Path) -> dict:
    return json.loads((folder / "training.json").read_text())


def _assert_scores(folder: Path, kind: str) -> None:
    """The saved folder loads as the right kind of model and ranks a judged pair above an unrelated one."""
    assert detect_model_kind(str(folder)) == kind
    scorer = load_scorer(str(folder), max_length=64, precision="fp32")
    scores = scorer.score("vitamin D deficiency and bone fractures",
                          ["Vitamin D deficiency increases the risk of bone fractures in older adults.",
                           "The stock market closed higher on Tuesday after a rally in technology shares."])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert scores[0] != scores[1]


def test_embed_mined_with_dev_selection_and_resume(tiny_dataset: Path, tiny_index: str, es_url: str,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "embedder"
    common = ["embed", "--dataset", str(tiny_dataset), "--index", tiny_index, "--es-url", es_url, "--output", str(out),
              "--eval-steps", "2", "--keep-checkpoints", "--negatives", "1", *TINY]
    result = _train(*common, "--max-steps", "2")
    assert "dev NDCG@10" in result.output
    first = _record(out)
    assert first["task"] == "embed" and first["global_step"] == 2
    assert first["config"]["max_length"] == 32 and first["config"]["loss"] == "mnrl"
    assert first["data"]["dev_queries"] and first["data"]["triplets_sha256"]
    assert first["dev"]["history"][0]["step"] == 2 and 0.0 <= first["dev"]["history"][0]["ndcg@10"] <= 1.0
    assert first["dev"]["best_checkpoint"].endswith("checkpoint-2")
    assert first["hardware"]["cpu_count"] and first["train_seconds"] > 0
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    hybrid = first["hybrid"]  # the dev-tuned kNN + BM25 weight, stored with the model
    assert hybrid["fusion"] == "linear" and 0.0 <= hybrid["weight"] <= 1.0
    assert f"+ BM25) weight {hybrid['weight']:.2f}" in " ".join(result.output.split())
    assert hybrid["corpus_docs"] == len(load_dataset(tiny_dataset).corpus) and hybrid["dev_queries"] >= 1
    registry = ModelRegistry(str(tmp_path / "store"))
    version = registry.register("t-embed", str(out))
    assert registry.show(f"t-embed@{version}")["card"]["hybrid"]["weight"] == hybrid["weight"]
    selection = first["selection"]   # few judged queries: k-fold over all of them, the zero-shot stacks only
    assert selection["mode"] == "kfold" and selection["winner"] in ("BM25", "zero-shot hybrid")
    assert selection["queries"] == len(load_dataset(tiny_dataset).split_qrels("train"))
    assert "tuned hybrid" in selection["left_out"]
    assert f"deployed stack: {selection['winner']}" in " ".join(result.output.split())

    _train(*common, "--max-steps", "4", "--resume", "latest")
    second = _record(out)
    assert second["resumed_from"].endswith("checkpoint-2")
    assert second["global_step"] == 4
    assert [h["step"] for h in second["dev"]["history"] if h["step"] > 0] == [4]
    _assert_scores(out, "embedding")


def test_rerank_listwise_from_triplets_file(triplets_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "ce-lambda"
    _train("rerank", "--triplets", str(triplets_file), "--output", str(out), "--loss", "lambda", "--negatives", "3",
           "--max-steps", "2", *TINY)
    record = _record(out)
    assert record["config"]["loss"] == "lambda" and record["global_step"] == 2
    assert record["dev"]["history"] == []  # no dataset: nothing to select on, the last step is kept
    assert not (out / "checkpoints").exists()
    _assert_scores(out, "cross-encoder")


def test_rerank_pointwise_with_dev(tiny_dataset: Path, tiny_index: str, es_url: str, tmp_path: Path) -> None:
    out = tmp_path / "ce-bce"
    _train("rerank", "--dataset", str(tiny_dataset), "--index", tiny_index, "--es-url", es_url, "--output", str(out),
           "--loss", "bce", "--negatives", "2", "--max-steps", "2", "--eval-steps", "2", *TINY)
    record = _record(out)
    assert record["config"]["loss"] == "bce"
    assert record["data"]["train_examples"] > 0
    assert record["dev"]["final"]["dev_ndcg@10"] >= 0.0
    _assert_scores(out, "cross-encoder")


def test_rerank_distill_cli(tiny_dataset: Path, tiny_index: str, es_url: str, tmp_path: Path) -> None:
    """`train rerank --distill`: hybrid-teacher lists (judged + title queries), listwise KL, one dev evaluation at the
    end whose fusion weight the summary turns into the gateway's bm25_weight."""
    out = tmp_path / "ce-distill"
    result = _train("rerank", "--distill", "--dataset", str(tiny_dataset), "--index", tiny_index, "--es-url", es_url,
                    "--output", str(out), "--title-queries", "3", "--list-size", "3", "--max-steps", "2",
                    "--max-length", "32", "--batch-size", "2", "--precision", "fp32")
    record = _record(out)
    teacher = record["data"]["distill"]["teacher"]
    assert record["task"] == "rerank" and record["config"]["loss"] == "listnet" and record["global_step"] == 2
    assert record["data"]["recipe"] == "distill" and record["data"]["distill"]["list_size"] == 3
    assert teacher["title_queries"] == 3 and teacher["lists"] == teacher["judged_lists"] + 3
    assert record["config"]["eval_steps"] == 2   # evaluated once, at the end
    final = record["dev"]["final"]
    weight = final["dev_fusion_weight"]
    assert 0.0 <= weight <= 1.0 and final["dev_fused_ndcg@10"] >= 0.0
    assert f"bm25_weight {1 - weight:.2f}" in " ".join(result.output.split())
    _assert_scores(out, "cross-encoder")


@pytest.mark.parametrize("args, message", [
    (["--distill", "--dataset", "."], "--index"),
    (["--list-size", "3"], "--distill"),
])
def test_distill_bad_options_fail_cleanly(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "rerank", "--output", str(tmp_path / "m"), *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_embed_cached_mnrl_yaml_config_to_store_uri(triplets_file: Path, tmp_path: Path, monkeypatch) -> None:
    """YAML config + CLI override, the cached MNRL loss, and --output as an fsspec store URI (memory://)."""
    import fsspec

    monkeypatch.setenv("SEARCHTUNE_HOME", str(tmp_path / "home"))
    config = tmp_path / "embed.yaml"
    config.write_text("loss: cached-mnrl\nmini_batch_size: 2\nlearning_rate: 1.0e-5\nseed: 7\nmax_steps: 1\n")
    uri = f"memory://t-train/{tmp_path.name}/emb-cached"
    _train("embed", "--triplets", str(triplets_file), "--output", uri, "--config", str(config), "--seed", "9", *TINY)
    fs, root = fsspec.core.url_to_fs(uri)
    local = tmp_path / "fetched"
    fs.get(root, str(local), recursive=True)
    record = _record(local)
    assert record["config"]["loss"] == "cached-mnrl"
    assert record["config"]["learning_rate"] == 1.0e-5
    assert record["config"]["seed"] == 9  # CLI beats YAML
    _assert_scores(local, "embedding")


@pytest.mark.parametrize("args, message", [
    (["embed", "--output", "x"], "--triplets"),
    (["rerank", "--output", "x", "--dataset", "."], "--index"),
])
def test_missing_inputs_fail_cleanly(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_bad_loss_names_the_field(triplets_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "rerank", "--triplets", str(triplets_file), "--output", str(tmp_path / "m"),
                                 "--loss", "mnrl"])
    assert result.exit_code == 1
    assert "loss" in result.output and "bce" in result.output
