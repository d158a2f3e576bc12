"""Hard-negative mining against the real Elasticsearch node, on a real SciFact subset indexed under a ``t-data-``
name: the guard rule holds when rechecked independently, mining resumes after a crash to the same result, and
dense mining with the real bundled embedding model adds negatives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import Dataset
from searchtune.data.examples import read_graded_pairs, read_triplets, write_triplets
from searchtune.data.mining import MiningError, mine_negatives
from searchtune.data.writers import write_beir
from searchtune.search.indexing import build_index
from searchtune.search.retrieval import bm25_search
from searchtune.search.retriever import BM25Retriever


@pytest.fixture(scope="module")
def mini_index(es, scifact_mini: Dataset):
    name = f"t-data-mining-{os.getpid()}"
    build_index(es, name, scifact_mini.corpus.values(), total=len(scifact_mini.corpus), recreate=True)
    yield name
    concrete = list(es.indices.get_alias(name=name).keys()) if es.indices.exists_alias(name=name) else []
    for index in concrete:
        es.indices.delete(index=index, ignore_unavailable=True)


def _all_scores(es, index: str, ds: Dataset) -> dict[str, dict[str, float]]:
    """BM25 score of every matching document for every train query (an independent look at the same index)."""
    run, _ = bm25_search(es, index, ds.split_queries("train"), top_k=len(ds.corpus))
    return run


def test_guard_rule_holds_on_every_negative(es, mini_index: str, scifact_mini: Dataset) -> None:
    margin = 0.1
    result = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=20, num_negatives=5, margin=margin)
    scores = _all_scores(es, mini_index, scifact_mini)
    qrels = scifact_mini.qrels["train"]
    assert result.queries == 24 and result.seconds > 0
    assert 0 < result.dropped_by_guard < result.candidates
    assert len(result.triplets) == sum(len(qrels[q]) for q in {t.query_id for t in result.triplets})
    for t in result.triplets:
        positives = set(qrels[t.query_id])
        run = scores[t.query_id]
        best = max(run.get(p, 0.0) for p in positives)
        assert t.positive == scifact_mini.corpus[t.positive_id].full_text
        assert 1 <= len(t.negatives) <= 5 and not positives & set(t.negative_ids)
        assert t.negatives == [scifact_mini.corpus[d].full_text for d in t.negative_ids]
        for doc_id in t.negative_ids:
            assert run[doc_id] < (1 - margin) * best
        # hardest first: the chosen negatives are the top-ranked candidates that pass the guard
        top20 = sorted(run, key=lambda d: -run[d])[:20]
        expected = [d for d in top20 if d not in positives and run[d] < (1 - margin) * best][:5]
        assert t.negative_ids == expected


def test_margin_only_guard_keeps_candidates_above_the_positive(es, mini_index: str, scifact_mini: Dataset) -> None:
    both = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=20, num_negatives=5, margin=0.1)
    margin_only = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=20, num_negatives=5, margin=0.1,
                                 drop_above_positive=False)
    none = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=20, num_negatives=5, margin=0.0,
                          drop_above_positive=False)
    assert both.candidates == margin_only.candidates == none.candidates
    assert both.dropped_by_guard > margin_only.dropped_by_guard >= none.dropped_by_guard
    assert none.dropped_by_guard <= 2  # only exact ties with the positive's score
    assert len(margin_only.triplets) >= len(both.triplets)
    assert 0 < both.drop_share < 1 and both.stats()["triplets"] == len(both.triplets)


def test_interrupted_mining_resumes_to_the_same_triplets(es, mini_index: str, scifact_mini: Dataset,
                                                         tmp_path: Path) -> None:
    reference = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=15, num_negatives=3, batch_size=5)
    output = tmp_path / "mined.jsonl"
    calls = []

    def crash_after_two_batches(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=15, num_negatives=3, batch_size=5, output=output,
                       on_progress=crash_after_two_batches)
    first_ten = set(list(scifact_mini.split_queries("train"))[:10])
    written = {t.query_id for t in read_triplets(output)}
    assert written and written <= first_ten  # two finished batches, durable before the crash
    with open(output, "a", encoding="utf-8") as handle:  # the process died in the middle of the next batch
        handle.write('{"query": "half a rec')
    with open(output.with_name(output.name + ".ckpt"), "a", encoding="utf-8") as handle:  # ...or of its checkpoint
        handle.write('{"done": ["x"')
    progress: list[int] = []
    resumed = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=15, num_negatives=3, batch_size=5, output=output,
                             on_progress=progress.append)
    assert resumed.resumed_queries == 10 and resumed.queries == 14 and sum(progress) == 24
    assert resumed.triplets == reference.triplets
    assert read_triplets(output) == reference.triplets
    done = mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=15, num_negatives=3, batch_size=5, output=output)
    assert done.queries == 0 and done.triplets == reference.triplets  # finished runs are not redone
    with pytest.raises(MiningError, match="other settings"):
        mine_negatives(BM25Retriever(es, mini_index), scifact_mini, top_k=16, num_negatives=3, batch_size=5, output=output)
    stray = tmp_path / "stray.jsonl"
    write_triplets(reference.triplets[:1], stray)
    with pytest.raises(MiningError, match="no checkpoint"):
        mine_negatives(BM25Retriever(es, mini_index), scifact_mini, output=stray)


def test_dense_mining_with_the_bundled_embedding_model(es, mini_index: str, scifact_mini: Dataset,
                                                       base_model_path: str) -> None:
    qrels = dict(list(scifact_mini.qrels["train"].items())[:4])
    keep = {d for judged in qrels.values() for d in judged} | set(list(scifact_mini.corpus)[:40])
    # dense mining embeds the dataset's corpus: keep it small (BM25 candidates outside it come from the index)
    small = Dataset(name="tiny", corpus={d: doc for d, doc in scifact_mini.corpus.items() if d in keep},
                    queries=scifact_mini.queries, qrels={"train": qrels})
    bm25 = mine_negatives(BM25Retriever(es, mini_index), small, top_k=20, num_negatives=4, margin=0.05)
    mixed = mine_negatives(BM25Retriever(es, mini_index), small, top_k=20, num_negatives=4, margin=0.05,
                           dense_model=base_model_path, dense_negatives=2, dense_max_length=64)
    assert mixed.dense_candidates > 0
    dense_by_query = {t.query_id: t for t in mixed.triplets}
    assert set(dense_by_query) >= {t.query_id for t in bm25.triplets}  # dense can rescue a query BM25 could not
    for plain in bm25.triplets:
        dense = dense_by_query[plain.query_id]
        assert len(dense.negative_ids) == len(set(dense.negative_ids)) <= 4
        assert dense.positive_id not in dense.negative_ids
        assert dense.negative_ids[:2] == plain.negative_ids[:2]  # the BM25 share is still the hardest BM25 ones
    assert any(dense_by_query[p.query_id].negative_ids != p.negative_ids for p in bm25.triplets)
    with pytest.raises(MiningError, match="needs a dense_model"):
        mine_negatives(BM25Retriever(es, mini_index), small, dense_negatives=1)


def test_cli_mine_negatives_writes_graded_pairs(es, es_url: str, mini_index: str, scifact_mini: Dataset,
                                                tmp_path: Path) -> None:
    data = write_beir(scifact_mini, tmp_path / "mini")
    output = tmp_path / "pairs.jsonl"
    stats = tmp_path / "stats.json"
    result = CliRunner().invoke(app, ["data", "mine-negatives", str(data), "--index", mini_index, "--output",
                                      str(output), "--format", "pairs", "--num-negatives", "3", "--top-k", "15",
                                      "--max-queries", "6", "--es-url", es_url, "--stats-json", str(stats)])
    assert result.exit_code == 0, result.output
    pairs = read_graded_pairs(output)
    assert {p.label for p in pairs} == {0.0, 1.0}
    assert len({p.query_id for p in pairs}) <= 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini", "pairs.jsonl", "stats.json"]
    missing = CliRunner().invoke(app, ["data", "mine-negatives", str(data), "--index", "t-data-no-such-index",
                                       "--output", str(tmp_path / "x.jsonl"), "--es-url", es_url])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert not (tmp_path / "x.jsonl.ckpt").exists()
