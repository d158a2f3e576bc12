"""Splitting by query: no query (or duplicate query text) straddles splits; seeded and reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import Dataset, load_dataset
from searchtune.data.examples import Triplet, read_triplets, write_triplets
from searchtune.data.split import parse_sizes, split_by_query, split_examples
from searchtune.data.validate import validate_path


def _text(ds: Dataset, qid: str) -> str:
    return " ".join(ds.queries[qid].text.lower().split())


def test_split_scifact_train_without_leakage(scifact: Dataset) -> None:
    result = split_by_query(scifact, {"train": 0.8, "dev": 0.2}, seed=7)
    assert set(result.splits) == {"train", "dev", "test"}
    assert result.qrels["test"] == scifact.qrels["test"]  # untouched
    train, dev = result.qrels["train"], result.qrels["dev"]
    assert not set(train) & set(dev)
    assert {**train, **dev} == scifact.qrels["train"]  # every judgment kept, none changed
    assert not {_text(result, q) for q in train} & {_text(result, q) for q in dev}
    assert len(dev) in (161, 162, 163)  # 20 % of 809 queries, up to a duplicate-text group
    again = split_by_query(scifact, {"train": 0.8, "dev": 0.2}, seed=7)
    assert again.qrels == result.qrels
    other = split_by_query(scifact, {"train": 0.8, "dev": 0.2}, seed=8)
    assert set(other.qrels["dev"]) != set(dev)


def test_duplicate_texts_move_together(scifact: Dataset) -> None:
    # queries 85/86 share a text in SciFact train; across seeds they must always land together
    pair = [q for q in ("85", "86") if q in scifact.qrels["train"]]
    assert len(pair) == 2, "SciFact train queries 85 and 86 are expected to repeat one claim"
    for seed in range(6):
        result = split_by_query(scifact, {"dev": 300, "train": "rest"}, seed=seed)
        assert len({s for s in result.splits if any(q in result.qrels[s] for q in pair)}) == 1
        assert abs(len(result.qrels["dev"]) - 300) <= 1


def test_counts_and_bad_sizes(scifact_mini: Dataset) -> None:
    result = split_by_query(scifact_mini, counts={"train": 20, "dev": 4}, seed=1)
    assert len(result.qrels["dev"]) == 4 and len(result.qrels["train"]) == 20
    for sizes, message in [({"train": 0.5, "dev": 0.2}, "add up to 1"), ({"train": 30, "dev": "rest"}, "only 24"),
                           ({"train": 20, "dev": 3}, "cover 23 of 24"), ({"a": "rest", "b": "rest"}, "only one"),
                           ({"train": 1.5, "dev": "rest"}, r"in \(0, 1\]"), ({"train": 24, "dev": "rest"}, "no queries")]:
        with pytest.raises(ValueError, match=message):
            split_by_query(scifact_mini, sizes, seed=1)
    with pytest.raises(ValueError, match="already exist"):
        split_by_query(scifact_mini, {"train": 0.5, "test": 0.5})
    assert parse_sizes("train=0.9, dev=100,x=rest") == {"train": 0.9, "dev": 100, "x": "rest"}
    with pytest.raises(ValueError, match="bad split size"):
        parse_sizes("train:0.9")


def test_split_examples_keeps_queries_whole(tmp_path: Path) -> None:
    triplets = [Triplet(f"query {i % 10}", f"pos {i}", [f"neg {i}"], query_id=None) for i in range(40)]
    parts = split_examples(triplets, {"train": 0.7, "dev": 0.3}, seed=3)
    assert sum(len(v) for v in parts.values()) == 40
    assert not {t.query for t in parts["train"]} & {t.query for t in parts["dev"]}
    assert len({t.query for t in parts["dev"]}) == 3
    path = tmp_path / "all.jsonl"
    write_triplets(triplets, path)
    out = tmp_path / "parts"
    result = CliRunner().invoke(app, ["data", "split", str(path), str(out), "--sizes", "train=0.7,dev=0.3",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert read_triplets(out / "dev.jsonl") == parts["dev"]


def test_cli_split_writes_beir_that_validates_clean(scifact_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "scifact-split"
    result = CliRunner().invoke(app, ["data", "split", str(scifact_dir), str(out), "--sizes", "dev=100,train=rest"])
    assert result.exit_code == 0, result.output
    ds = load_dataset(out)
    assert set(ds.splits) == {"train", "dev", "test"} and len(ds.qrels["dev"]) in (99, 100, 101)
    report = validate_path(out)
    assert report.ok
    # the only leaks left are the two SciFact claims that the source already repeats across train and test
    assert report.stats["split_leaks"] == 2
    again = CliRunner().invoke(app, ["data", "split", str(scifact_dir), str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
