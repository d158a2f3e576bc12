"""Batches for in-batch-negative losses: texts tokenized once, rows of similar length together, no duplicate texts.

Why: the trainer pads every column of a batch to its longest text, so a batch mixing a 60-token abstract with
256-token ones computes on padding; and sentence-transformers' collator tokenizes every text again at every step
and epoch. Here every distinct text is tokenized once up front (the lengths also drive the grouping), and the
sampler sorts rows by length inside large shuffled windows (Hugging Face's ``group_by_length`` scheme: random
windows of ``50 x batch`` rows, sorted, cut into batches, batch order shuffled), while keeping
:class:`~sentence_transformers.base.sampler.NoDuplicatesBatchSampler`'s guarantee that no text appears twice in a
batch (a duplicate would be scored as its own negative). The order depends only on the seed and the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

#: Rows per sorting window, in batches (the value Hugging Face's LengthGroupedSampler uses).
WINDOW_BATCHES = 50


class PretokenizedTexts:
    """Token ids of every training text, computed once; a drop-in for ``model.preprocess`` in the data collator.

    Texts it has not seen (or calls with a prompt) fall back to the model's own preprocessing, so behaviour never
    differs from the stock collator, only the repeated work goes.
    """

    def __init__(self, model, texts: Sequence[str], batch_size: int = 1024):
        self.model = model
        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length)
        self.encodings: dict[str, dict[str, list[int]]] = {}
        unique = list(dict.fromkeys(texts))
        for start in range(0, len(unique), batch_size):
            chunk = unique[start:start + batch_size]
            encoded = self.tokenizer(chunk, truncation="longest_first", max_length=self.max_length)
            for i, text in enumerate(chunk):
                self.encodings[text] = {key: values[i] for key, values in encoded.items()}
        self.lengths = {text: len(encoding["input_ids"]) for text, encoding in self.encodings.items()}
        self.tokens_seen = 0
        self.attention_pairs_seen = 0  # sum of squared sequence lengths (attention cost grows with it)
        # padding cached ids is the point here, so the tokenizer's "call me instead of pad" hint does not apply
        getattr(self.tokenizer, "deprecation_warnings", {})["Asking-to-pad-a-fast-tokenizer"] = True
        if unique and not self._matches_model(unique[:8]):
            # a model whose own preprocessing differs (lower-casing, special inputs) keeps it; only lengths are cached
            self.encodings.clear()

    def _matches_model(self, sample: list[str]) -> bool:
        ours, theirs = self(sample), self.model.preprocess(sample)
        self.tokens_seen = self.attention_pairs_seen = 0
        return all(key in ours and torch.equal(ours[key], value) for key, value in theirs.items()
                   if isinstance(value, torch.Tensor))

    def length(self, text: str) -> int:
        return self.lengths.get(text, self.max_length)

    def __call__(self, inputs: list, prompt: str | None = None, **kwargs) -> dict[str, Any]:
        if prompt or kwargs.get("task") or not all(isinstance(t, str) and t in self.encodings for t in inputs):
            batch = self.model.preprocess(inputs, prompt=prompt, **kwargs)
            mask = batch.get("attention_mask")
            self._count(mask.sum(dim=1).tolist() if isinstance(mask, torch.Tensor) else [])
            return batch
        rows = [self.encodings[t] for t in inputs]
        self._count([len(r["input_ids"]) for r in rows])
        batch = dict(self.tokenizer.pad({key: [r[key] for r in rows] for key in rows[0]}, return_tensors="pt"))
        batch["modality"] = "text"
        return batch

    def _count(self, lengths: list[int]) -> None:
        self.tokens_seen += sum(lengths)
        self.attention_pairs_seen += sum(n * n for n in lengths)


class LengthGroupedBatchSampler(DefaultBatchSampler):
    """Length-grouped batches without duplicate texts; ``lengths[i]`` is the token count of row ``i``."""

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns: list[str] | None = None,
                 generator: torch.Generator | None = None, seed: int = 0, *, lengths: Sequence[int]):
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if len(lengths) != len(dataset):
            raise ValueError(f"{len(lengths)} lengths for {len(dataset)} rows")
        self.lengths = list(lengths)
        columns = [c for c in dataset.column_names if c not in (valid_label_columns or [])]
        self.row_texts = [frozenset(str(row[c]) for c in columns) for row in dataset]

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        window = self.batch_size * WINDOW_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: -self.lengths[i])
            batches.extend(self._without_duplicates(chunk))
        full = [b for b in batches if len(b) == self.batch_size]
        partial = [i for b in batches if len(b) < self.batch_size for i in b]
        batches = full + ([] if self.drop_last else
                          [partial[i:i + self.batch_size] for i in range(0, len(partial), self.batch_size)])
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[index]

    def _without_duplicates(self, ordered: list[int]) -> list[list[int]]:
        """Fill batches in length order; a row whose text is already in the batch waits for the next one."""
        batches, pending = [], list(ordered)
        while pending:
            batch, seen, deferred = [], set(), []
            for index in pending:
                texts = self.row_texts[index]
                if len(batch) < self.batch_size and not (texts & seen):
                    batch.append(index)
                    seen |= texts
                else:
                    deferred.append(index)
            batches.append(batch)
            pending = deferred
        return batches


def row_lengths(dataset, texts: PretokenizedTexts, label_columns: Sequence[str] = ()) -> list[int]:
    """Tokens of each row (all its text columns): what a batch of such rows costs to pad and run."""
    columns = [c for c in dataset.column_names if c not in label_columns]
    return [sum(texts.length(str(row[c])) for c in columns) for row in dataset]


def grouped_trainer_class(trainer_cls):
    """``trainer_cls`` whose training batches come from :class:`LengthGroupedBatchSampler` over ``row_lengths``.

    A subclass rather than ``args.batch_sampler``: the lengths are data, and training arguments must stay
    serialisable (they are saved in every checkpoint).
    """

    class GroupedTrainer(trainer_cls):
        row_lengths: list[int] | None = None

        def get_batch_sampler(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None,
                              seed=0):
            if self.row_lengths is None or len(dataset) != len(self.row_lengths):
                return super().get_batch_sampler(dataset, batch_size, drop_last, valid_label_columns, generator,
                                                 seed)
            return LengthGroupedBatchSampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                                             lengths=self.row_lengths)

    GroupedTrainer.__name__ = f"Grouped{trainer_cls.__name__}"
    return GroupedTrainer
