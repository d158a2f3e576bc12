"""The k-fold stack chooser on real data: Cranfield's BM25 from the session's Elasticsearch node, the real base
model's kNN (over the documents BM25 returns for 30 queries and their judged ones, to keep it cheap)."""

from __future__ import annotations

import random

import pytest

from searchtune.eval.hybrid import tune_hybrid_weight
from searchtune.eval.selection import (HybridCandidate, RunCandidate, choose_stack, dev_split, judged_ids,
                                       kfold_splits, validation_mode)

INDEX = "t-choose-cranfield"


@pytest.fixture(scope="module")
def cranfield_runs(es, datasets_dir, base_model_path):
    from searchtune.data import load_dataset
    from searchtune.eval.hybrid import exact_knn_run
    from searchtune.search.indexing import build_index
    from searchtune.search.retrieval import bm25_search
    from searchtune.vectors.embedders import open_embedder

    dataset = load_dataset(datasets_dir / "cranfield")
    qrels = dataset.split_qrels(dataset.splits[0])
    ids = judged_ids(qrels)[:30]
    qrels = {q: qrels[q] for q in ids}
    build_index(es, INDEX, dataset.corpus.values(), total=len(dataset.corpus), recreate=True)
    es.indices.refresh(index=INDEX)
    queries = {q: dataset.queries[q] for q in ids}
    bm25, _ = bm25_search(es, INDEX, queries, top_k=20)
    pool = {d for run in bm25.values() for d in run} | {d for q in qrels for d in qrels[q]}
    embedder = open_embedder(base_model_path, max_length=48)
    knn, _ = exact_knn_run(embedder, {d: dataset.corpus[d] for d in sorted(pool) if d in dataset.corpus}, queries,
                           k=20)
    yield qrels, bm25, knn.run
    es.indices.delete(index=INDEX, ignore_unavailable=True)


def test_every_query_is_scored_once_with_weights_tuned_without_it(cranfield_runs) -> None:
    qrels, bm25, knn = cranfield_runs
    splits = kfold_splits(list(qrels), folds=5, seed=3)
    scored = [q for _, part in splits for q in part]
    assert sorted(scored) == sorted(qrels) and len(scored) == len(set(scored))
    assert all(not set(tune) & set(part) for tune, part in splits)
    hybrid = HybridCandidate("zero-shot hybrid", qrels, bm25, knn=knn)
    selection = choose_stack(qrels, [RunCandidate("BM25", qrels, bm25), hybrid], splits)
    score = selection.candidates["zero-shot hybrid"]
    assert len(score.per_query) == len(qrels) and len(score.per_fold) == 5
    for (tune, _), params in zip(splits, score.fold_params):   # the same choice as the eval stage's own tuner
        expected = tune_hybrid_weight({q: qrels[q] for q in tune}, {q: bm25[q] for q in tune}, knn)
        assert params["weight"] == expected.weight
    assert selection.winner in ("BM25", "zero-shot hybrid") and selection.mode == "kfold"
    assert selection.margin_over_bm25 == pytest.approx(selection.candidates[selection.winner].mean
                                                       - selection.candidates["BM25"].mean)


def test_a_trained_stack_wins_only_when_it_beats_zero_shot_out_of_fold(cranfield_runs) -> None:
    qrels, bm25, knn = cranfield_runs
    coarse = (0.0, 0.25, 0.5, 0.75, 1.0)   # fewer weights: each fold's table costs one fusion + NDCG per weight
    zero_shot = [RunCandidate("BM25", qrels, bm25), HybridCandidate("zero-shot hybrid", qrels, bm25, knn=knn,
                                                                     grid=coarse)]
    calls = []

    def judged_first(fold: int) -> dict:   # a "model" that learnt the judgments: relevant documents on top
        calls.append(fold)
        return {q: {d: 1.0 + g for d, g in qrels[q].items() if g > 0} | dict(knn[q]) for q in qrels}

    def shuffled(fold: int) -> dict:       # a model that learnt nothing: the kNN scores of another query
        others = list(qrels)
        random.Random(fold).shuffle(others)
        return {q: knn[o] for q, o in zip(qrels, others)}

    splits = kfold_splits(list(qrels), folds=4, seed=1)
    good = choose_stack(qrels, [*zero_shot, HybridCandidate("tuned hybrid", qrels, bm25, knn_for_fold=judged_first,
                                                            zero_shot=False, kind="tuned hybrid", grid=coarse)], splits)
    assert sorted(set(calls)) == [0, 1, 2, 3]   # scored only with the models trained without each fold
    assert good.winner == "tuned hybrid" and good.margin > 0.1 and good.margin_ci95[0] > 0
    assert good.p_better > 0.95 and good.sure.startswith("sure")
    assert good.reference in ("BM25", "zero-shot hybrid")
    folds_weights = sorted(p["weight"] for p in good.candidates["tuned hybrid"].fold_params)
    assert good.candidates["tuned hybrid"].params["weight"] == pytest.approx(  # never tuned on what it learnt
        (folds_weights[1] + folds_weights[2]) / 2)
    bad = choose_stack(qrels, [*zero_shot, HybridCandidate("tuned hybrid", qrels, bm25, knn_for_fold=shuffled,
                                                           zero_shot=False, kind="tuned hybrid", grid=coarse)], splits)
    assert bad.winner != "tuned hybrid" and bad.margin == 0.0
    assert bad.candidates["tuned hybrid"].mean <= bad.candidates[bad.winner].mean


def test_ties_go_to_the_cheaper_stack_and_a_zero_shot_stack_is_required(cranfield_runs) -> None:
    qrels, bm25, _ = cranfield_runs
    same = choose_stack(qrels, [RunCandidate("BM25", qrels, bm25),
                                RunCandidate("copy", qrels, bm25, zero_shot=False, kind="tuned")],
                        dev_split(list(qrels)[:20], list(qrels)[20:]), mode="dev")
    assert same.winner == "BM25" and same.folds == 1 and same.queries == 10
    with pytest.raises(ValueError, match="zero-shot"):
        choose_stack(qrels, [RunCandidate("copy", qrels, bm25, zero_shot=False)], kfold_splits(list(qrels)))
    assert validation_mode(30) == "kfold" and validation_mode(5000) == "dev"
