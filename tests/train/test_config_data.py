"""Config resolution and data preparation, without training (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from searchtune.data.records import DatasetError
from searchtune.train.config import load_config
from searchtune.train.data import (Triplet, carve_dev, embed_dataset, listwise_dataset, pointwise_dataset,
                                   read_triplets, triplets_digest)

TRIPLETS = [Triplet("q1", "p1", ["n1", "n2"], "1"), Triplet("q2", "p2", ["m1"], "2"), Triplet("q3", "p3", [], "3")]


def test_defaults_yaml_then_overrides(tmp_path: Path) -> None:
    assert load_config("embed").loss == "auto" and load_config("rerank").num_negatives == 7
    path = tmp_path / "c.yaml"
    path.write_text("learning-rate: 0.001\nepochs: 2\nloss: listnet\n")
    cfg = load_config("rerank", path, {"epochs": 5, "seed": None})
    assert (cfg.learning_rate, cfg.epochs, cfg.loss, cfg.seed) == (0.001, 5, "listnet", 42)


@pytest.mark.parametrize("text, field", [("lr: 1\n", "lr"), ("batch_size: 0\n", "batch_size"),
                                         ("loss: bce\n", "loss"), ("task: rerank\n", "task")])
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DatasetError) as err:
        load_config("embed", path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_read_triplets_reports_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"query": "q", "positive": "p", "negatives": ["n"]}) + "\n"
                    + json.dumps({"query": "q", "negatives": []}) + "\n")
    with pytest.raises(DatasetError) as err:
        read_triplets(path)
    assert ":2" in str(err.value) and "positive" in str(err.value)
    path.write_text(json.dumps({"query": "q", "positive": "p", "negatives": ["n"], "query_id": 7}) + "\n")
    [triplet] = read_triplets(path)
    assert (triplet.query, triplet.negatives, triplet.query_id) == ("q", ["n"], "7")


def test_trainer_datasets_have_the_loss_columns() -> None:
    emb = embed_dataset(TRIPLETS, 2, seed=1)
    assert emb.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert len(emb) == 2  # the triplet without negatives cannot fill the negative columns
    row = next(r for r in emb if r["anchor"] == "q2")
    assert row["negative_1"] == row["negative_2"] == "m1"
    point = pointwise_dataset(TRIPLETS, 1, seed=1)
    assert sorted(zip(point["document"], point["label"])) == [("m1", 0.0), ("n1", 0.0), ("p1", 1.0), ("p2", 1.0),
                                                              ("p3", 1.0)]
    lists = listwise_dataset(TRIPLETS, 5, seed=1)
    row = next(r for r in lists if r["query"] == "q1")
    assert row["docs"] == ["p1", "n1", "n2"] and row["labels"] == [1.0, 0.0, 0.0]


def test_dev_carve_is_seeded_and_never_everything() -> None:
    ids = [str(i) for i in range(50)]
    assert carve_dev(ids, 0.1, 42) == carve_dev(reversed(ids), 0.1, 42)
    assert len(carve_dev(ids, 0.1, 42)) == 5 and carve_dev(ids, 0.1, 42) != carve_dev(ids, 0.1, 7)
    assert len(carve_dev(ids, 0.5, 1, max_queries=3)) == 3
    assert carve_dev(["a"], 0.5, 1) == set() and carve_dev(ids, 0.0, 1) == set()
    assert triplets_digest(TRIPLETS) != triplets_digest(TRIPLETS[:2])
