"""Fusion and win/loss arithmetic on hand-checkable runs (no model needed: the inputs are the point)."""

from __future__ import annotations

import pytest

from searchtune.eval.metrics import evaluate
from searchtune.eval.rerank import fuse_runs, minmax, top_k_docs, tune_fusion_weight, wins_losses, with_tail

BM25 = {"q1": {"a": 10.0, "b": 8.0, "c": 6.0, "d": 1.0}, "q2": {"x": 3.0, "y": 2.0, "z": 1.0}}
MODEL = {"q1": {"a": 0.1, "b": 0.2, "c": 0.9}, "q2": {"x": 0.5, "y": 0.4, "z": 0.3}}
QRELS = {"q1": {"c": 1}, "q2": {"x": 1}}


def test_minmax_scales_to_unit_range_and_handles_constants() -> None:
    assert minmax({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert minmax({"a": 5.0, "b": 5.0}) == {"a": 0.0, "b": 0.0}
    assert minmax({}) == {}


def test_with_tail_keeps_unreranked_docs_below_in_bm25_order() -> None:
    full = with_tail(MODEL, BM25)
    assert top_k_docs(full["q1"], 4) == ["c", "b", "a", "d"]
    assert set(full["q2"]) == {"x", "y", "z"}


def test_fuse_runs_interpolates_normalised_scores() -> None:
    fused = fuse_runs(BM25, MODEL, 0.5)
    # q1: bm25 over {a,b,c} normalised a=1, b=0.5, c=0; model a=0, b=0.125, c=1
    assert fused["q1"]["a"] == pytest.approx(0.5)
    assert fused["q1"]["b"] == pytest.approx(0.3125)
    assert fused["q1"]["c"] == pytest.approx(0.5)
    assert fused["q1"]["d"] < min(fused["q1"][k] for k in "abc")
    assert top_k_docs(fuse_runs(BM25, MODEL, 0.0)["q1"], 3) == ["a", "b", "c"]
    assert top_k_docs(fuse_runs(BM25, MODEL, 1.0)["q1"], 3) == ["c", "b", "a"]
    with pytest.raises(ValueError):
        fuse_runs(BM25, MODEL, 1.5)


def test_tune_fusion_weight_finds_the_weight_that_fixes_the_ranking() -> None:
    choice = tune_fusion_weight(QRELS, BM25, MODEL, grid=[0.0, 0.25, 0.6, 0.8, 1.0])
    # q1 needs the model to lift c above a: at 0.25 a still leads (0.75 vs 0.25); 0.6 is the smallest weight that works
    assert choice.weight == 0.6
    assert choice.value == pytest.approx(1.0)
    assert choice.curve[0.0] < 1.0


def test_wins_losses_counts_per_query_changes() -> None:
    base = evaluate(QRELS, BM25)
    better = evaluate(QRELS, with_tail(MODEL, BM25))
    result = wins_losses(base, better)
    assert (result.wins, result.losses, result.ties) == (1, 0, 1)
    assert wins_losses(better, base).losses == 1
