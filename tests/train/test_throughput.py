"""Throughput pieces on real SciFact text and the real base model: tokenize-once equals the model's own
preprocessing, length-grouped batches cover every row once without duplicate texts and with less padding, the
memory estimate picks the loss, and the schedule comes from the data size."""

from __future__ import annotations

import random

import pytest
import torch

from searchtune.data import load_dataset
from searchtune.train.batching import LengthGroupedBatchSampler, PretokenizedTexts, row_lengths
from searchtune.train.config import load_config
from searchtune.train.memory import plan_embed_loss
from searchtune.train.schedule import resolve_schedule
from searchtune.train.throughput import model_flops, set_attention_dropout


@pytest.fixture(scope="module")
def model(base_model_path: str):
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(base_model_path)
    m.max_seq_length = 128
    return m


@pytest.fixture(scope="module")
def rows(scifact_dir):
    """Real (query, positive, negative) rows; some passages repeat across rows, as mined data does."""
    from datasets import Dataset

    ds = load_dataset(scifact_dir)
    qrels = ds.split_qrels("train")
    rng = random.Random(3)
    docs = sorted(ds.corpus)[:60]
    anchors, positives, negatives = [], [], []
    for qid in sorted(qrels)[:90]:
        did = sorted(qrels[qid])[0]
        anchors.append(ds.queries[qid].text)
        positives.append(ds.corpus[did].full_text)
        negatives.append(ds.corpus[rng.choice(docs)].full_text)
    return Dataset.from_dict({"anchor": anchors, "positive": positives, "negative": negatives})


def test_pretokenized_batches_equal_the_models_preprocessing(model, rows) -> None:
    texts = PretokenizedTexts(model, list(rows["positive"]) + list(rows["anchor"]))
    batch = list(rows["positive"])[:7] + list(rows["anchor"])[:3]
    ours, theirs = texts(batch), model.preprocess(batch)
    assert ours["modality"] == theirs["modality"] == "text"
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours[key], theirs[key]), key
    assert texts.tokens_seen == int(theirs["attention_mask"].sum())
    unseen = texts(["a text it never saw"])  # falls back to the model
    assert torch.equal(unseen["input_ids"], model.preprocess(["a text it never saw"])["input_ids"])


def _padding(batches, lengths) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_length_grouped_batches(model, rows) -> None:
    texts = PretokenizedTexts(model, [t for c in rows.column_names for t in rows[c]])
    lengths = row_lengths(rows, texts)
    sampler = LengthGroupedBatchSampler(rows, batch_size=8, drop_last=False, seed=5, lengths=lengths)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(rows))) and len(batches) == len(sampler)
    for batch in batches:
        seen = [t for i in batch for t in {rows[i][c] for c in rows.column_names}]
        assert len(seen) == len(set(seen)), "a text appears twice in one batch"
    assert list(LengthGroupedBatchSampler(rows, 8, False, seed=5, lengths=lengths)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    shuffled = torch.randperm(len(rows), generator=torch.Generator().manual_seed(5)).tolist()
    random_batches = [shuffled[i:i + 8] for i in range(0, len(shuffled), 8)]
    assert _padding(batches, lengths) < _padding(random_batches, lengths)


def test_memory_estimate_picks_the_loss(model) -> None:
    common = dict(batch_size=32, mini_batch_size=16, num_negatives=1, max_length=256, attention_dropout=0.0)
    roomy = plan_embed_loss(model, requested="auto", budget_gib=64, **common)
    tight = plan_embed_loss(model, requested="auto", budget_gib=3.0, **common)
    asked = plan_embed_loss(model, requested="mnrl", budget_gib=3.0, **common)
    assert (roomy.loss, tight.loss, asked.loss) == ("mnrl", "cached-mnrl", "mnrl")
    assert tight.estimate_gib < tight.plain_mnrl_gib
    with_dropout = plan_embed_loss(model, requested="auto", budget_gib=64, **{**common, "attention_dropout": 0.1})
    assert with_dropout.plain_mnrl_gib > roomy.plain_mnrl_gib  # attention matrices are kept


def test_quickstart_memory_budget_trains_scifact_defaults_with_plain_mnrl(model) -> None:
    """The quickstart's budget was raised from a measured run (plain MNRL peaked at 5.45 GiB with Elasticsearch):
    at the embed defaults and 256 tokens it must pick plain MNRL, and fall back to cached MNRL at 512."""
    from searchtune.quickstart.training import TRAIN_MEMORY_GIB

    defaults = load_config("embed")
    common = dict(requested="auto", batch_size=defaults.batch_size, mini_batch_size=16,
                  num_negatives=defaults.num_negatives, attention_dropout=defaults.attention_dropout,
                  budget_gib=TRAIN_MEMORY_GIB)
    assert plan_embed_loss(model, max_length=256, **common).loss == "mnrl"
    assert plan_embed_loss(model, max_length=512, **common).loss == "cached-mnrl"


def test_freed_heap_goes_back_to_the_os() -> None:
    """What the quickstart and ``train embed`` do after training: blocks below glibc's mmap threshold live in its
    arenas, and freeing them (one in a hundred kept, as a trainer's heap is left) does not shrink the process
    until the heap is trimmed."""
    import numpy as np

    from searchtune.train.memory import return_freed_memory

    blocks = [np.ones(12_000) for _ in range(3_000)]  # 96 KB each, about 275 MiB
    kept = blocks[99::100]
    del blocks
    assert return_freed_memory("a test") > 100 * 2**20
    assert len(kept) == 30


def test_attention_dropout_and_flops(base_model_path: str) -> None:
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(base_model_path)
    assert set_attention_dropout(m, 0.0) >= 6  # one per layer at least
    assert all(getattr(mod, "dropout_prob", 0.0) == 0.0 for name, mod in m.named_modules() if "attention" in name)
    assert model_flops(m, tokens=1000, attention_pairs=0) * 2 == model_flops(m, tokens=2000, attention_pairs=0)


def test_schedule_comes_from_the_data_size() -> None:
    config = load_config("embed")
    small, plan = resolve_schedule(config, rows=828)
    assert (small.epochs, plan["steps_per_epoch"], plan["planned_steps"]) == (2.0, 26, 52)
    large, plan = resolve_schedule(config, rows=20000)
    assert (large.epochs, plan["planned_steps"]) == (1.0, 625)
    _, plan = resolve_schedule(load_config("embed", overrides={"epochs": 3}), rows=828)
    assert plan["planned_steps"] == 78 and plan["rule"] == "epochs given"
    _, plan = resolve_schedule(load_config("embed", overrides={"max_steps": 7}), rows=828)
    assert plan["planned_steps"] == 7
