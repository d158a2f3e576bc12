"""Teacher lists for distillation, built from real SciFact queries and documents with a hand-made teacher run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from searchtune.data import load_dataset
from searchtune.train.distill import MAX_EPOCHS, distill_schedule
from searchtune.train.distill_data import (POSITIVE_BONUS, build_teacher_lists, corpus_title_queries, lists_dataset,
                                           teacher_run)


@pytest.fixture(scope="module")
def scifact(tiny_dataset: Path):
    return load_dataset(tiny_dataset)


def test_judged_positive_leads_and_the_guard_drops_unjudged_documents_above_it(scifact):
    qid, query = next(iter(scifact.split_queries("train").items()))
    positive = next(iter(scifact.split_qrels("train")[qid]))
    others = [d for d in list(scifact.corpus)[:40] if d != positive]
    # the teacher ranks two unjudged documents above the judged positive: probably relevant, never taught as worse
    teacher = {qid: {others[0]: 0.99, others[1]: 0.95, positive: 0.9, **{d: 0.8 - i / 100 for i, d in
                                                                        enumerate(others[2:30])}}}
    [lst] = build_teacher_lists({qid: query}, teacher, scifact.corpus, qrels={qid: {positive: 1}}, list_size=8)
    assert lst.source == "judged" and len(lst.docs) == 8
    assert lst.docs[0] == scifact.corpus[positive].full_text
    assert lst.labels[0] == pytest.approx(1.0 + POSITIVE_BONUS)
    texts = set(lst.docs)
    assert scifact.corpus[others[0]].full_text not in texts and scifact.corpus[others[1]].full_text not in texts
    assert lst.labels == sorted(lst.labels, reverse=True) and max(lst.labels[1:]) <= 0.8
    # the hardest half of the room comes from the top of the teacher's list
    assert scifact.corpus[others[2]].full_text in texts


def test_title_queries_show_their_own_document_without_its_title(scifact):
    queries = corpus_title_queries(scifact.corpus, 5, seed=1)
    assert len(queries) == 5 and all(q.startswith("title:") for q in queries)
    assert queries == corpus_title_queries(scifact.corpus, 5, seed=1)  # reproducible
    qid, query = next(iter(queries.items()))
    source = qid.removeprefix("title:")
    assert query.text == scifact.corpus[source].title
    pool = [d for d in list(scifact.corpus)[:20] if d != source]
    teacher = {qid: {source: 1.0, **{d: 0.5 - i / 100 for i, d in enumerate(pool)}}}
    [lst] = build_teacher_lists(queries | {}, teacher, scifact.corpus, list_size=6)
    assert lst.source == "title" and lst.docs[0] == scifact.corpus[source].text  # abstract only
    assert lst.labels[0] == 1.0 and query.text not in lst.docs[0][:len(query.text)]
    rows = lists_dataset([lst], scale=8.0, seed=0)
    assert rows[0]["labels"][0] == pytest.approx(8.0)


def test_teacher_run_is_the_gateways_linear_fusion_cut_to_depth():
    bm25 = {"q": {"a": 10.0, "b": 5.0, "c": 1.0}}
    knn = {"q": {"c": 0.9, "d": 0.8, "a": 0.1}}
    run = teacher_run(bm25, knn, weight=0.5, depth=3)
    # a: .5 + 0, c: 0 + .5 (the tie goes to BM25's rank), d: 0 + .4375, b: .2222 + 0
    assert list(run["q"]) == ["a", "c", "d"] and run["q"]["a"] == run["q"]["c"] == pytest.approx(0.5)
    assert len(teacher_run(bm25, knn, weight=0.5, depth=2)["q"]) == 2


def test_the_amount_trained_depends_on_the_data_only():
    epochs, plan = distill_schedule(1500, 8, 4, pair_budget=24_000)
    assert epochs == pytest.approx(2.0) and plan["planned_steps"] == 750
    epochs, plan = distill_schedule(6000, 8, 4, pair_budget=24_000)
    assert epochs == pytest.approx(0.5) and plan["planned_steps"] == 750
    assert distill_schedule(6000, 8, 4) == distill_schedule(6000, 8, 4)
    epochs, plan = distill_schedule(100, 4, 8)  # a small set: the epoch cap, not the pair budget, sets the amount
    assert epochs == pytest.approx(MAX_EPOCHS) and plan["planned_steps"] == math.ceil(MAX_EPOCHS * 100 / 8)
