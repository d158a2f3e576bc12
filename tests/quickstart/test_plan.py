"""``--task auto``: what the quickstart trains is arithmetic on the data sizes and the cap, never a timer; and the
cross-encoder goes behind the hybrid stack only when it beats that stack on the same dev queries."""

from __future__ import annotations

import pytest

from searchtune.quickstart.plan import estimate_embed_s, estimate_reranker_s, plan_task
from searchtune.quickstart.rerank import MIN_DEV_GAIN, RERANK_WINDOW, reranker_verdict, with_reranker

SCIFACT = {"train_queries": 728, "dev_queries": 81, "test_queries": 300, "corpus_docs": 5183, "window": RERANK_WINDOW}


def test_auto_trains_both_on_scifact_within_the_default_cap_and_the_embedder_only_under_a_tight_one() -> None:
    both = plan_task("auto", 90, **SCIFACT)
    assert both.task == "both" and "within the 90 min cap" in both.reason
    # the estimate is the sum of the two parts; a cap between the embedder's and both leaves the cross-encoder out
    cap = (both.embed_s + both.reranker_s / 2) / 60
    embed_only = plan_task("auto", cap, **SCIFACT)
    assert embed_only.task == "embed" and "over the" in embed_only.reason and "--task both" in embed_only.reason
    assert embed_only.embed_s == both.embed_s and embed_only.reranker_s == both.reranker_s


def test_an_explicit_task_is_kept_whatever_the_estimate() -> None:
    for task in ("embed", "rerank", "both"):
        plan = plan_task(task, 0.1, **SCIFACT)
        assert plan.task == task and plan.reason == f"--task {task} asked for"


def test_estimates_grow_with_the_data_and_follow_max_steps() -> None:
    assert estimate_embed_s(1456, 5183) > estimate_embed_s(728, 5183) > estimate_embed_s(728, 1000)
    assert estimate_embed_s(728, 5183, max_steps=2) < estimate_embed_s(728, 5183)
    assert estimate_reranker_s(81, 600, 30) > estimate_reranker_s(81, 300, 30)
    assert estimate_reranker_s(81, 300, 30, max_steps=2) < estimate_reranker_s(81, 300, 30)


def _record(teacher: float, fused: float, alone: float, weight: float) -> dict:
    return {"data": {"dev_queries": ["1", "2", "3"], "distill": {"teacher": {"dev_ndcg@10": teacher, "weight": 0.6}}},
            "dev": {"final": {"dev_ndcg@10": alone, "dev_fused_ndcg@10": fused, "dev_fusion_weight": weight}}}


@pytest.mark.parametrize(("fused", "deployed"), [(0.7360, True), (0.7350, True), (0.7330, False), (0.7300, False)])
def test_the_cross_encoder_is_deployed_only_when_it_beats_hybrid_alone_by_the_margin(fused: float,
                                                                                    deployed: bool) -> None:
    assert MIN_DEV_GAIN == 0.005
    wins, line = reranker_verdict(_record(teacher=0.7300, fused=fused, alone=0.55, weight=0.3))
    assert wins is deployed
    assert line.startswith("cross-encoder deployed" if deployed else "cross-encoder not deployed")
    assert f"{fused - 0.7300:+.4f}" in line and "hybrid alone 0.7300" in line and "on 3 queries" in line


def test_a_record_without_dev_is_never_deployed() -> None:
    record = _record(0.7, 0.8, 0.6, 0.5)
    record["dev"] = {}
    assert reranker_verdict(record)[0] is False


def test_with_reranker_appends_neural_rerank_after_the_deployed_hybrid() -> None:
    from searchtune.quickstart.hybrid import hybrid_pipeline

    hybrid = hybrid_pipeline("custom-rerank-v1@prod", "http://127.0.0.1:8081", 0.65)
    body = with_reranker(hybrid, "http://127.0.0.1:8082/rerank", "custom-rerank-v1-reranker",
                         _record(0.7, 0.72, 0.6, 0.3))
    first, second = body["request_processors"]
    assert first == hybrid["request_processors"][0]   # the deployed hybrid, unchanged (model_id, weight)
    rerank = second["neural_rerank"]
    assert rerank["model_id"] == "custom-rerank-v1-reranker" and rerank["top_k"] == RERANK_WINDOW
    assert rerank["bm25_weight"] == pytest.approx(0.7)   # 1 - the cross-encoder's dev fusion weight
    assert rerank["headers"] == first["hybrid"]["headers"]


def test_under_both_the_cross_encoder_takes_only_the_shared_training_options(tmp_path) -> None:
    from searchtune.quickstart.options import QuickstartOptions
    from searchtune.quickstart.rerank import reranker_overrides
    from searchtune.train.distill import distill_config

    given = {"loss": "mnrl", "learning_rate": 6e-5, "max_steps": 3, "seed": 7}
    both = QuickstartOptions(dataset=tmp_path, workdir=tmp_path, task="both", train_overrides=given)
    assert reranker_overrides(both) == {"max_steps": 3, "seed": 7}
    config = distill_config(reranker_overrides(both))   # an embedder's loss would not validate for a reranker
    assert config.loss == "listnet" and config.max_steps == 3
    rerank = QuickstartOptions(dataset=tmp_path, workdir=tmp_path, task="rerank", train_overrides={"max_steps": 3})
    assert reranker_overrides(rerank) == {"max_steps": 3}


def test_a_failed_cross_encoder_keeps_the_deployed_hybrid_stack(tmp_path) -> None:
    """The embedder a deployed stack served is gone when distillation starts (a real failure: its folder does not
    exist): the run keeps the hybrid pipeline, says why, and registers nothing."""
    from types import SimpleNamespace

    from searchtune.data.records import Dataset
    from searchtune.quickstart.hybrid import hybrid_pipeline
    from searchtune.quickstart.options import QuickstartOptions
    from searchtune.quickstart.runner import Quickstart

    run = Quickstart(QuickstartOptions(dataset=tmp_path, workdir=tmp_path / "qs", task="both"), announce=lambda m: None)
    run.served_embedder = str(tmp_path / "no-such-model")
    hybrid = hybrid_pipeline("custom-rerank-v1@prod", "http://127.0.0.1:8081", 0.65)
    split = Dataset(name="tiny", corpus={}, queries={}, qrels={})
    body, lines = run.add_reranker(None, split, "idx", SimpleNamespace(winner="tuned hybrid", weight=0.65), hybrid)
    assert body is hybrid and len(lines) == 1
    assert lines[0].startswith("cross-encoder not deployed: its training failed")
    assert run.reranker_record is None and not run.reranker_deployed
    assert not (tmp_path / "qs" / "store" / "models" / "custom-rerank-v1-reranker").exists()


def test_the_reproduce_commands_put_the_deployed_hybrid_and_cross_encoder(tmp_path) -> None:
    """The report's Reproduce block: the pipeline as deployed (weights, window), pointed at the two servers it
    starts (8080 embedder, 8081 cross-encoder) instead of the run's random ports."""
    import json

    from searchtune.quickstart.hybrid import hybrid_pipeline
    from searchtune.quickstart.options import QuickstartOptions
    from searchtune.quickstart.runner import Quickstart

    run = Quickstart(QuickstartOptions(dataset=tmp_path, workdir=tmp_path / "qs", task="both"), announce=lambda m: None)
    hybrid = hybrid_pipeline("custom-rerank-v1@prod", "http://127.0.0.1:41234", 0.65)
    run.deployed_pipeline = with_reranker(hybrid, "http://127.0.0.1:45678/rerank", "custom-rerank-v1-reranker",
                                          _record(0.7, 0.72, 0.6, 0.4))
    run.reranker_deployed, run.served_embedder = True, "custom-rerank-v1@1"
    commands = run._commands("scifact", "http://127.0.0.1:9200", "http://127.0.0.1:9201")
    assert "searchtune serve --model custom-rerank-v1@prod --port 8080" in commands
    assert "searchtune serve --model custom-rerank-v1-reranker@prod --port 8081" in commands
    curl = next(c for c in commands if c.startswith("curl -XPUT"))
    first, second = json.loads(curl.split(" -d '", 1)[1].rstrip("'"))["request_processors"]
    assert first["hybrid"]["endpoint"] == "http://127.0.0.1:8080/v1/embeddings"
    assert first["hybrid"]["fusion"]["weight"] == pytest.approx(0.65)
    assert second["neural_rerank"]["endpoint"] == "http://127.0.0.1:8081/rerank"
    assert second["neural_rerank"]["bm25_weight"] == pytest.approx(0.6) and "41234" not in curl
