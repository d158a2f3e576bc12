"""Loaders on the real shared collections and on malformed files (errors must name file, line and field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from searchtune.data import DatasetError, load_dataset


def test_scifact_beir_counts(scifact_dir: Path) -> None:
    ds = load_dataset(scifact_dir)
    assert ds.name == "scifact"
    assert len(ds.corpus) == 5183
    assert len(ds.queries) == 1109
    assert set(ds.splits) == {"train", "test"}
    assert len(ds.split_qrels("test")) == 300
    assert sum(len(d) for d in ds.split_qrels("test").values()) == 339
    assert len(ds.split_qrels("train")) == 809
    assert len(ds.split_qrels("test")["133"]) == 5
    assert ds.split_qrels("test")["870"] == {"195689316": 1}


def test_cranfield_sequential_query_mapping_and_inverted_codes(datasets_dir: Path) -> None:
    ds = load_dataset(datasets_dir / "cranfield")
    assert len(ds.corpus) == 1400 and len(ds.queries) == 225
    qrels = ds.split_qrels("test")
    assert sum(len(d) for d in qrels.values()) == 1837
    # qrels query 3 is the third query in cran.qry (".I 004"), about heat conduction in composite slabs
    assert "heat conduction in composite slabs" in ds.queries["3"].text
    # Cleverdon code 1 (most relevant) becomes the highest gain 4; -1 becomes 0
    gains = {g for docs in qrels.values() for g in docs.values()}
    assert gains == {0, 1, 2, 3, 4}
    assert ds.corpus["1"].title.startswith("experimental investigation of the aerodynamics")
    assert not ds.corpus["1"].text.startswith("experimental investigation")


def test_npl_trec_collection(datasets_dir: Path) -> None:
    ds = load_dataset(datasets_dir / "npl_vaswani")
    assert len(ds.corpus) == 11429
    assert len(ds.queries) == 93
    assert sum(len(d) for d in ds.split_qrels("test").values()) == 2083
    assert ds.queries["1"].text == "measurement of dielectric constant of liquids by the use of microwave techniques"


def _beir(tmp_path: Path, corpus: str, queries: str = '{"_id": "q1", "text": "a question"}\n',
          qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\n") -> Path:
    (tmp_path / "qrels").mkdir(parents=True, exist_ok=True)
    (tmp_path / "corpus.jsonl").write_text(corpus)
    (tmp_path / "queries.jsonl").write_text(queries)
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    return tmp_path


GOOD_DOC = '{"_id": "d1", "title": "t", "text": "body"}\n'


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "file", "line", "field"),
    [
        (GOOD_DOC + '{"_id": "d2", "title": "t"\n', None, None, "corpus.jsonl", 2, None),
        (GOOD_DOC + '{"_id": "d2", "title": "t"}\n', None, None, "corpus.jsonl", 2, "text"),
        (GOOD_DOC + '{"_id": "d2", "text": 5}\n', None, None, "corpus.jsonl", 2, "text"),
        (GOOD_DOC + GOOD_DOC, None, None, "corpus.jsonl", 2, "_id"),
        (GOOD_DOC, '{"text": "no id"}\n', None, "queries.jsonl", 1, "_id"),
        (GOOD_DOC, None, "query-id\tcorpus-id\tscore\nq1\td1\n", "test.tsv", 2, None),
        (GOOD_DOC, None, "query-id\tcorpus-id\tscore\nq1\td1\thigh\n", "test.tsv", 2, "score"),
        (GOOD_DOC, None, "query-id\tcorpus-id\tscore\nq1\td1\t0.5\n", "test.tsv", 2, "score"),
    ],
)
def test_malformed_beir_names_file_line_field(tmp_path: Path, corpus, queries, qrels, file, line, field) -> None:
    kwargs = {k: v for k, v in {"queries": queries, "qrels": qrels}.items() if v is not None}
    root = _beir(tmp_path, corpus, **kwargs)
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert Path(err.value.path).name == file
    assert err.value.line == line
    assert err.value.field == field
    assert f"{file}:{line}" in str(err.value)


def test_good_beir_roundtrip(tmp_path: Path) -> None:
    ds = load_dataset(_beir(tmp_path, GOOD_DOC))
    assert ds.corpus["d1"].full_text == "t. body"
    assert ds.split_qrels("test") == {"q1": {"d1": 1}}
    with pytest.raises(DatasetError, match="no split 'dev'"):
        ds.split_qrels("dev")


def test_jsonl_with_trec_qrels(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"id": "7", "text": "x"}) + "\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"id": "1", "text": "q"}) + "\n")
    (tmp_path / "qrels.test.txt").write_text("1 0 7 2\n")
    ds = load_dataset(tmp_path)
    assert ds.split_qrels("test") == {"1": {"7": 2}}
    (tmp_path / "qrels.test.txt").write_text("1 0 7\n")
    with pytest.raises(DatasetError, match=r"qrels.test.txt:1"):
        load_dataset(tmp_path)


def test_cranfield_bad_code(tmp_path: Path, datasets_dir: Path) -> None:
    for name in ("cran.all.1400", "cran.qry"):
        (tmp_path / name).write_bytes((datasets_dir / "cranfield" / name).read_bytes())
    (tmp_path / "cranqrel").write_text("1 184 2\n1 29 7\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path)
    assert err.value.line == 2 and err.value.field == "code"


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DatasetError, match="unrecognised dataset layout"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing")
