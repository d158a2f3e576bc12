"""Graded-pairs and triplets JSONL: good files round-trip, malformed files fail naming file, line and field; the
BEIR writer and the pairs/triplets loaders feed the one Dataset representation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from searchtune.data import Dataset, DatasetError, load_dataset
from searchtune.data.examples import (GradedPair, Triplet, detect_format, examples_to_dataset, load_examples,
                                      read_graded_pairs, read_triplets, triplets_to_graded_pairs, write_graded_pairs,
                                      write_triplets)
from searchtune.data.writers import write_beir, write_split_pairs


def _lines(path: Path, *records: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_graded_pairs_int_and_float_labels_round_trip(tmp_path: Path) -> None:
    src = _lines(tmp_path / "pairs.jsonl",
                 {"query": "what is bm25", "document": "BM25 is a ranking function.", "label": 2, "query_id": 7},
                 "",
                 {"query": "what is bm25", "document": "Cats sleep a lot.", "label": 0.25, "doc_id": "d9"})
    pairs = read_graded_pairs(src)
    assert pairs == [GradedPair("what is bm25", "BM25 is a ranking function.", 2.0, query_id="7"),
                     GradedPair("what is bm25", "Cats sleep a lot.", 0.25, doc_id="d9")]
    assert detect_format(src) == "graded-pairs"
    out = tmp_path / "out" / "pairs.jsonl"
    assert write_graded_pairs(pairs, out) == 2
    assert read_graded_pairs(out) == pairs
    assert json.loads(out.read_text().splitlines()[0])["label"] == 2  # whole labels stay integers
    assert [p.name for p in out.parent.iterdir()] == ["pairs.jsonl"]  # no temp file left behind


def test_graded_pairs_doc_id_resolved_from_corpus_beside_file(tmp_path: Path) -> None:
    _lines(tmp_path / "corpus.jsonl", {"_id": "d1", "title": "BM25", "text": "a ranking function"})
    src = _lines(tmp_path / "train.jsonl", {"query": "q", "doc_id": "d1", "label": 1})
    fmt, pairs = load_examples(src)
    assert fmt == "graded-pairs" and pairs[0].document == "BM25. a ranking function"
    with pytest.raises(DatasetError, match=r"train\.jsonl:1 field 'document': gives only doc_id 'd1'"):
        read_graded_pairs(src)  # no corpus given: the reader says so rather than inventing text
    bad = _lines(tmp_path / "bad.jsonl", {"query": "q", "doc_id": "nope", "label": 1})
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1 field 'doc_id': document 'nope' is not in the corpus"):
        load_examples(bad)


@pytest.mark.parametrize(("line", "pattern"), [
    ('{"query": "q", "document": "d"', r"pairs\.jsonl:2: invalid JSON"),
    ('["q", "d", 1]', r"pairs\.jsonl:2: expected a JSON object, got list"),
    ('{"document": "d", "label": 1}', r"pairs\.jsonl:2 field 'query': missing required field"),
    ('{"query": "  ", "document": "d", "label": 1}', r"pairs\.jsonl:2 field 'query': must not be empty"),
    ('{"query": "q", "label": 1}', r"pairs\.jsonl:2 field 'document': missing required field"),
    ('{"query": "q", "document": "d"}', r"pairs\.jsonl:2 field 'label': missing required field"),
    ('{"query": "q", "document": "d", "label": "1"}', r"pairs\.jsonl:2 field 'label': must be a number, got str"),
    ('{"query": "q", "document": "d", "label": true}', r"pairs\.jsonl:2 field 'label': must be a number, got bool"),
    ('{"query": "q", "document": "d", "label": NaN}', r"pairs\.jsonl:2 field 'label': must be a finite number"),
    ('{"query": "q", "document": "d", "label": -1}', r"pairs\.jsonl:2 field 'label': must not be negative"),
    ('{"query": "q", "document": 5, "label": 1}', r"pairs\.jsonl:2 field 'document': must be a string, got int"),
    ('{"query": "q", "query_id": [1], "document": "d", "label": 1}', r"field 'query_id': must be a string or integer"),
])
def test_malformed_graded_pairs_name_file_line_field(tmp_path: Path, line: str, pattern: str) -> None:
    src = _lines(tmp_path / "pairs.jsonl", {"query": "q", "document": "d", "label": 1}, line)
    with pytest.raises(DatasetError, match=pattern):
        read_graded_pairs(src)


def test_collecting_errors_reports_every_bad_line(tmp_path: Path) -> None:
    src = _lines(tmp_path / "pairs.jsonl", '{"query": "q"', {"query": "q", "document": "d", "label": 1},
                 {"query": "q", "document": "d"}, {"query": "q", "document": "e", "label": 0})
    errors: list[DatasetError] = []
    pairs = read_graded_pairs(src, errors=errors)
    assert len(pairs) == 2
    assert [(e.line, e.field) for e in errors] == [(1, None), (3, "label")]


def test_triplets_round_trip_and_malformed(tmp_path: Path) -> None:
    triplets = [Triplet("q1", "pos", ["n1", "n2"], query_id="1", positive_id="p", negative_ids=["a", "b"]),
                Triplet("q2", "pos2", [])]
    path = tmp_path / "t.jsonl"
    assert write_triplets(triplets, path) == 2
    assert read_triplets(path) == triplets
    assert detect_format(path) == "triplets"
    for line, pattern in [
        ({"query": "q", "positive": "p", "negatives": "n"}, r"t\.jsonl:1 field 'negatives': must be a list"),
        ({"query": "q", "positive": "p", "negatives": ["n", 3]}, r"field 'negatives': item 1 must be a string"),
        ({"query": "q", "negatives": ["n"]}, r"t\.jsonl:1 field 'positive': missing required field"),
        ({"query": "q", "positive": "p"}, r"t\.jsonl:1 field 'negatives': missing required field"),
        ({"query": "q", "positive": "p", "negatives": ["n"], "negative_ids": ["a", "b"]},
         r"field 'negative_ids': has 2 ids for 1 negatives"),
    ]:
        _lines(path, line)
        with pytest.raises(DatasetError, match=pattern):
            read_triplets(path)


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_triplets([Triplet("q", "p", ["n"])], path)

    def broken():
        yield Triplet("q2", "p2", ["n2"])
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_triplets(broken(), path)
    assert read_triplets(path) == [Triplet("q", "p", ["n"])]
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]


def test_examples_become_a_dataset_and_a_beir_folder(tmp_path: Path) -> None:
    path = _lines(tmp_path / "triplets.jsonl",
                  {"query": "q one", "positive": "good doc", "negatives": ["bad doc", "worse doc"]},
                  {"query": "q one", "positive": "other good doc", "negatives": ["bad doc"]})
    ds = load_dataset(path)  # the shared loader recognises an examples file
    assert ds.splits == ["train"] and len(ds.queries) == 1 and len(ds.corpus) == 4
    (qid, judged), = ds.split_qrels("train").items()
    assert sorted(judged.values()) == [0, 0, 1, 1]
    out = write_beir(ds, tmp_path / "beir")
    again = load_dataset(out)
    assert again.qrels == ds.qrels and again.corpus == ds.corpus and again.queries == ds.queries
    with pytest.raises(DatasetError, match="already exists"):
        write_beir(ds, out)
    floats = [GradedPair("q", "d", 0.5)]
    with pytest.raises(DatasetError, match="not a whole number"):
        examples_to_dataset(floats, "x")


def test_beir_and_pairs_writers_on_real_scifact(scifact_mini: Dataset, tmp_path: Path) -> None:
    out = write_beir(scifact_mini, tmp_path / "mini")
    again = load_dataset(out)
    assert again.qrels == scifact_mini.qrels
    assert again.corpus == scifact_mini.corpus and again.queries == scifact_mini.queries
    n = write_split_pairs(again, "train", tmp_path / "train.jsonl")
    pairs = read_graded_pairs(tmp_path / "train.jsonl")
    assert n == len(pairs) == sum(len(j) for j in scifact_mini.qrels["train"].values())
    first = pairs[0]
    assert first.document == scifact_mini.corpus[first.doc_id].full_text
    flat = triplets_to_graded_pairs([Triplet("q", "p", ["n1", "n1"])])
    assert [(p.document, p.label) for p in flat] == [("p", 1.0), ("n1", 0.0)]


def test_corpus_topics_trec_qrels_to_beir_and_malformed_qrels(tmp_path: Path, datasets_dir: Path) -> None:
    npl = load_dataset(datasets_dir / "npl_vaswani")  # TREC text documents + topics + TREC qrels
    again = load_dataset(write_beir(npl, tmp_path / "npl-beir"))
    assert again.qrels == npl.qrels and again.queries == npl.queries and len(again.corpus) == 11429
    root = tmp_path / "plain"
    root.mkdir()
    _lines(root / "corpus.jsonl", {"_id": "d1", "text": "alpha"})
    _lines(root / "queries.jsonl", {"_id": "1", "text": "alpha?"})
    (root / "qrels.train.txt").write_text("1 0 d1 1\n1 0 d2\n")
    with pytest.raises(DatasetError, match=r"qrels\.train\.txt:2: expected 4 columns"):
        load_dataset(root)
    (root / "qrels.train.txt").write_text("1 0 d1 1\n")
    assert load_dataset(write_beir(load_dataset(root), tmp_path / "plain-beir")).qrels == {"train": {"1": {"d1": 1}}}
