"""Indexing a real collection into the real node: mapping, count check, no silent overwrite, atomic rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import Document, load_dataset
from searchtune.search.indexing import IndexExistsError, build_index

runner = CliRunner()
INDEX = "t-found-cranfield"


@pytest.fixture
def clean_index(es):
    yield INDEX
    es.indices.delete(index=f"{INDEX}-*", ignore_unavailable=True)


def test_index_cli_builds_and_refuses_overwrite(es, es_url: str, datasets_dir: Path, clean_index: str) -> None:
    result = runner.invoke(app, ["index", str(datasets_dir / "cranfield"), "--index", clean_index, "--es-url", es_url])
    assert result.exit_code == 0, result.output
    assert "indexed 1400 documents" in result.output
    assert es.count(index=clean_index)["count"] == 1400
    mapping = next(iter(es.indices.get_mapping(index=clean_index).values()))["mappings"]
    assert mapping["properties"]["id"]["type"] == "keyword"
    assert mapping["properties"]["title"]["type"] == "text"
    doc = es.get(index=clean_index, id="1")["_source"]
    assert doc["title"].startswith("experimental investigation")

    again = runner.invoke(app, ["index", str(datasets_dir / "cranfield"), "--index", clean_index, "--es-url", es_url])
    assert again.exit_code == 1
    assert "already exists" in again.output and "--recreate" in again.output


def test_recreate_swaps_alias_and_failed_rebuild_keeps_old(es, clean_index: str) -> None:
    docs = [Document(id=str(i), title=f"title {i}", text=f"text number {i}") for i in range(20)]
    assert build_index(es, clean_index, docs) == 20
    first = set(es.indices.get_alias(name=clean_index))
    assert build_index(es, clean_index, docs[:10], recreate=True) == 10
    second = set(es.indices.get_alias(name=clean_index))
    assert first.isdisjoint(second)
    assert not es.indices.exists(index=list(first)[0])

    def broken():
        yield from docs[:5]
        raise RuntimeError("source failed mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        build_index(es, clean_index, broken(), recreate=True)
    assert set(es.indices.get_alias(name=clean_index)) == second
    assert es.count(index=clean_index)["count"] == 10
    with pytest.raises(IndexExistsError):
        build_index(es, clean_index, docs)


def test_count_mismatch_is_an_error(es, clean_index: str) -> None:
    docs = [Document(id="same", text="a"), Document(id="same", text="b")]
    with pytest.raises(RuntimeError, match="expected 2"):
        build_index(es, clean_index, docs)
    assert not es.indices.exists(index=clean_index)


def test_real_collection_loads_with_progress(es, datasets_dir: Path, clean_index: str) -> None:
    ds = load_dataset(datasets_dir / "npl_vaswani")
    seen = []
    count = build_index(es, clean_index, ds.corpus.values(), total=len(ds.corpus), on_progress=seen.append)
    assert count == 11429 and sum(seen) == 11429
