"""`searchtune train ... --judgments LIST`: the list laid over its dataset, trained on for real (a few steps of the
bundled MiniLM on a SciFact slice in a real index), recorded in training.json, kept by the registry, and shown on
the workbench's list page as "trained on list@version"."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import DatasetError, load_dataset
from searchtune.data.split import sample_subset
from searchtune.data.writers import write_beir
from searchtune.registry.registry import ModelRegistry
from searchtune.search.indexing import build_index
from searchtune.workbench.app import create_app
from searchtune.workbench.configs import SearchTargets
from searchtune.workbench.judgments import Grade, JudgmentList
from searchtune.workbench.lineage import trained_on_lists
from searchtune.workbench.state import Workbench
from searchtune.workbench.training import apply_judgments

TINY = ["--max-length", "32", "--batch-size", "4", "--precision", "fp32", "--negatives", "1"]


@pytest.fixture(scope="module")
def small_dataset(scifact_dir: Path, tmp_path_factory) -> Path:
    subset = sample_subset(load_dataset(scifact_dir), {"train": 8, "test": 4}, distractors=80, name="wb-train")
    return write_beir(subset, tmp_path_factory.mktemp("wb-train") / "data")


@pytest.fixture(scope="module")
def small_index(es, small_dataset: Path):
    name = f"t-wb-train-{uuid.uuid4().hex[:8]}"
    ds = load_dataset(small_dataset)
    build_index(es, name, ds.corpus.values(), total=len(ds.corpus), recreate=True)
    yield name
    es.indices.delete(index=f"{name}*", ignore_unavailable=True)


def _judged_list(store: Path, dataset: Path, index: str = "") -> JudgmentList:
    ds = load_dataset(dataset)
    train_q = next(iter(ds.split_queries("train")))
    test_q = next(iter(ds.split_queries("test")))
    relevant = next(iter(ds.qrels["train"][train_q]))
    other = next(d for d in ds.corpus if d not in ds.qrels["train"][train_q])
    judgments = JudgmentList("wb-train-list", str(store))
    judgments.create("graded", dataset=str(dataset), index=index)
    judgments.record([Grade(train_q, ds.queries[train_q].text, relevant, 0, "ana"),
                      Grade(train_q, ds.queries[train_q].text, other, 3, "ana"),
                      Grade(test_q, ds.queries[test_q].text, other, 2, "bo"),
                      Grade("wb-typed", "aspirin and heart attacks", other, 2, "bo")])
    return judgments


def test_list_overlays_the_training_split_without_leaking_test_queries(small_dataset: Path, tmp_path: Path) -> None:
    judgments = _judged_list(tmp_path, small_dataset)
    ds = load_dataset(small_dataset)
    train_q = next(iter(ds.split_queries("train")))
    test_q = next(iter(ds.split_queries("test")))
    merged, info = apply_judgments(ds, "wb-train-list", "train", str(tmp_path))
    rel = next(iter(ds.qrels["train"][train_q]))
    other = [d for d, g in judgments.qrels()[train_q].items() if g == 3][0]
    assert merged.qrels["train"][train_q][rel] == 0 and merged.qrels["train"][train_q][other] == 3
    assert test_q not in merged.qrels["train"] and merged.qrels["test"] == ds.qrels["test"]
    assert merged.queries["wb-typed"].text == "aspirin and heart attacks" and "wb-typed" in merged.qrels["train"]
    assert info["name"] == "wb-train-list" and info["version"] == 4 and info["queries"] == 2
    older, old_info = apply_judgments(ds, "wb-train-list@2", "train", str(tmp_path))
    assert "wb-typed" not in older.qrels["train"] and old_info["version"] == 2
    assert old_info["qrels_sha256"] != info["qrels_sha256"]
    judgments.record([Grade(train_q, "q", "no-such-doc", 1, "ana")])
    with pytest.raises(DatasetError, match="not in the dataset's corpus"):
        apply_judgments(ds, "wb-train-list", "train", str(tmp_path))


def test_train_on_a_list_and_see_it_on_the_list_page(small_dataset: Path, small_index: str, es_url: str,
                                                     tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "store"
    monkeypatch.setenv("SEARCHTUNE_STORE", str(store))
    _judged_list(store, small_dataset, small_index)
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", "embed", "--judgments", "wb-train-list@4", "--index", small_index,
                                      "--es-url", es_url, "-o", str(out), "--max-steps", "1", *TINY])
    assert result.exit_code == 0, result.output
    used = json.loads((out / "training.json").read_text())["data"]["judgments"]
    assert used["name"] == "wb-train-list" and used["version"] == 4
    registry = ModelRegistry(str(store))
    version = registry.register("wb-embed", str(out))
    rows = trained_on_lists(str(store), "wb-train-list")
    assert [(r.model, r.version, r.list_version) for r in rows] == [("wb-embed", version, 4)]
    bench = Workbench(SearchTargets(es_url, small_index), JudgmentList("wb-train-list", str(store)),
                      load_dataset(small_dataset))
    page = TestClient(create_app(bench)).get("/lists")
    assert page.status_code == 200
    assert "wb-embed" in page.text and "wb-train-list@4" in page.text


def test_train_with_an_unknown_list_is_one_line(es_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEARCHTUNE_STORE", str(tmp_path))
    result = CliRunner().invoke(app, ["train", "embed", "--judgments", "nope", "--index", "x", "--es-url", es_url,
                                      "-o", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "no judgment list named 'nope'" in result.output and "Traceback" not in result.output


def test_quickstart_judgments_become_a_dataset_folder_with_the_lists_grades(small_dataset: Path, tmp_path: Path
                                                                           ) -> None:
    """`quickstart --judgments`: the overlaid dataset is written as a BEIR folder the stages read like any other."""
    from searchtune.workbench.training import write_judged_dataset

    judgments = _judged_list(tmp_path / "store", small_dataset)
    folder, info = write_judged_dataset("wb-train-list", None, tmp_path / "judged", store=str(tmp_path / "store"))
    written = load_dataset(folder)
    expected, _ = apply_judgments(load_dataset(small_dataset), "wb-train-list", "train", str(tmp_path / "store"))
    assert written.qrels["train"] == {q: {d: g for d, g in docs.items()} for q, docs in expected.qrels["train"].items()}
    assert written.qrels["test"] == load_dataset(small_dataset).qrels["test"]  # other splits untouched
    assert "wb-typed" in written.split_queries("train")  # a query typed in the workbench is trained on
    assert info["name"] == "wb-train-list" and info["version"] == judgments.meta()["version"]
