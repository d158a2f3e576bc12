"""Equal reranker scores: offline eval orders them the way the gateway does (by the previous stage), and a
cross-encoder's head runs in fp32 under bf16 autocast so a weak model's scores do not collapse into ties."""

from __future__ import annotations

import torch

from searchtune.eval.metrics import evaluate
from searchtune.eval.rerank import break_ties, fuse_runs, with_tail


def test_tied_model_scores_keep_the_first_stage_order_in_the_metrics():
    first = {"q": {"zeta": 9.0, "alpha": 5.0, "beta": 4.0, "gamma": 1.0}}
    model = {"q": {"zeta": 0.25, "alpha": 0.25, "beta": 0.25}}  # a model that predicts the base rate
    run = with_tail(model, first)
    assert sorted(run["q"], key=lambda d: -run["q"][d]) == ["zeta", "alpha", "beta", "gamma"]
    # ir-measures would break an exact tie by document id ("alpha" first); the judged "zeta" must stay first
    assert evaluate({"q": {"zeta": 1}}, run).aggregate["NDCG@10"] == 1.0
    fused = fuse_runs(first, model, 1.0)  # model-only fusion of a constant list: first-stage order too
    assert max(fused["q"], key=fused["q"].get) == "zeta"


def test_break_ties_moves_values_by_ulps_and_keeps_distinct_ones():
    scores = {"a": 0.5, "b": 0.5, "c": 0.4999999, "d": 0.1}
    out = break_ties(scores, {"b": 0, "a": 1, "c": 2, "d": 3})
    assert sorted(out, key=lambda d: -out[d]) == ["b", "a", "c", "d"]
    assert all(abs(out[d] - scores[d]) < 1e-12 for d in scores)
    assert len(set(out.values())) == 4


def test_bf16_scores_of_a_base_rate_head_stay_distinct_with_the_fp32_head(base_model_path):
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import set_seed

    from searchtune.scoring import CrossEncoderScorer, scorer_for_model

    set_seed(42)
    model = CrossEncoder(base_model_path, num_labels=1, max_length=64)
    model.activation_fn = torch.nn.Identity()
    with torch.no_grad():  # the checkpoint: logits -1.89..-1.70 on 20 documents (it predicts the base rate)
        model.model.classifier.weight.mul_(6.0)
        model.model.classifier.bias.fill_(-1.8)
    docs = [f"statin therapy study {i}: {'cholesterol ' * (i % 5)}outcomes in {i * 7} patients" for i in range(20)]
    plain = CrossEncoderScorer(model=model, name="t", dtype=torch.bfloat16).score("statins and cancer", docs)
    assert len(set(plain)) < 20   # bf16 logits near -1.8 have steps of 2^-7: ties
    fp32 = CrossEncoderScorer(model=model, name="t", dtype=torch.float32).score("statins and cancer", docs)
    fixed = scorer_for_model(model, "cross-encoder", torch.bfloat16).score("statins and cancer", docs)
    assert len(set(fixed)) == 20
    assert max(abs(a - b) for a, b in zip(fixed, fp32)) < 0.02
    assert model.model.classifier.weight.dtype == torch.float32  # weights (and their saved names) untouched
