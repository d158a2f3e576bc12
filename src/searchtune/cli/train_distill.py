"""``searchtune train rerank --distill``: the small-data cross-encoder recipe (train/distill.py, docs/reranker.md).

Kept apart from cli/train.py because its inputs differ: no triplets and no mined negatives, but a teacher (BM25 on
``--index`` + an embedder) whose fused scores label every candidate of every train query and of corpus title queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from searchtune.cli.checks import require_index, require_split
from searchtune.cli.common import fail, out
from searchtune.data import DatasetError, load_dataset


def run_distill(*, dataset: Path | None, index: str | None, output: str, es_url: str, split: str,
                teacher_embedder: str | None, title_queries: int | None, list_size: int | None,
                time_cap_minutes: float | None, overrides: dict[str, Any]) -> None:
    """Build the teacher lists, train, save the model folder + training.json, print the dev figures."""
    from searchtune.search.client import CLUSTER_ERRORS, search_client
    from searchtune.search.retrieval import parse_fields
    from searchtune.search.retriever import BM25Retriever
    from searchtune.train.budget import TimeBudgetCallback
    from searchtune.train.distill import DistillSettings, distill_config, distill_reranker, indexed_vectors
    from searchtune.train.schedule import budget_cut_note
    from searchtune.vectors.embedders import open_embedder

    if dataset is None or not index:
        fail("--distill needs --dataset DIR and --index NAME (the index holding its corpus: the teacher's BM25)")
    if title_queries is not None and title_queries < 0:
        fail(f"--title-queries must be 0 or more, got {title_queries}")
    if list_size is not None and list_size < 2:
        fail(f"--list-size must be at least 2, got {list_size}")
    settings = DistillSettings(**{k: v for k, v in {"title_queries": title_queries, "list_size": list_size}.items()
                                  if v is not None})
    embedder = None
    try:
        ds = load_dataset(dataset)
        require_split(ds, split, "--split")
        config = distill_config(overrides)
        client = search_client(es_url)
        require_index(client, index, es_url)
        embedder = open_embedder(teacher_embedder, max_length=config.max_length)
        callbacks = [TimeBudgetCallback(time_cap_minutes * 60)] if time_cap_minutes else []
        outcome = distill_reranker(ds, BM25Retriever(client, index, parse_fields(config.fields)), embedder, output,
                                   train_split=split, config=config, settings=settings, callbacks=callbacks,
                                   vector_index=indexed_vectors(client, index, embedder),
                                   data_info={"recipe": "distill", "dataset": str(dataset), "index": index})
    except (DatasetError, FileNotFoundError) as exc:
        fail(str(exc))
    except CLUSTER_ERRORS as exc:
        fail(f"search on '{index}' at {es_url} failed: {exc}")
    finally:
        if embedder is not None:
            embedder.close()
    record = outcome.record
    if budget_cut_note(record):
        out.print(f"WARNING: {budget_cut_note(record)}")
    teacher = record["data"]["distill"]["teacher"]
    final = record["dev"]["final"] or {}
    summary = (f"saved distilled rerank model to {output} in {record['train_seconds']:.0f}s "
               f"({record['global_step']} steps, {record['pairs_per_second']} pairs/s; teacher {teacher['seconds']:.0f}s, "
               f"{teacher['lists']} lists)")
    if final:
        weight = final.get("dev_fusion_weight", 0)
        summary += (f"; dev NDCG@10 {final.get('dev_ndcg@10', 0):.4f}, fused with hybrid "
                    f"{final.get('dev_fused_ndcg@10', 0):.4f} (cross-encoder weight {weight:.2f}: deploy "
                    f"neural_rerank after hybrid with bm25_weight {1 - weight:.2f}); teacher hybrid "
                    f"{teacher.get('dev_ndcg@10', 0):.4f}")
    out.print(summary)
