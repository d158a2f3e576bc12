"""The one in-memory representation every loader produces and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: qrels[query_id][doc_id] = graded relevance (0 = judged non-relevant).
Qrels = dict[str, dict[str, int]]


class DatasetError(ValueError):
    """Bad input data. Always names the file, and the line and field when known, so users can fix it fast."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = self.path
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" field '{field}'"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and body as one passage, the form rerankers and embedders score."""
        return f"{self.title}. {self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str


@dataclass(slots=True)
class Dataset:
    """A corpus, its queries and relevance judgments per split (``train``/``dev``/``test``)."""

    name: str
    corpus: dict[str, Document]
    queries: dict[str, Query]
    qrels: dict[str, Qrels] = field(default_factory=dict)
    source: str = ""

    @property
    def splits(self) -> list[str]:
        return sorted(self.qrels)

    def split_qrels(self, split: str) -> Qrels:
        if split not in self.qrels:
            raise DatasetError(self.source or self.name, f"no split '{split}' (available: {', '.join(self.splits) or 'none'})")
        return self.qrels[split]

    def split_queries(self, split: str) -> dict[str, Query]:
        """Queries that have judgments in ``split`` (and exist in the query file), in a stable order."""
        judged = self.split_qrels(split)
        return {qid: self.queries[qid] for qid in sorted(judged, key=_natural_key) if qid in self.queries}


def _natural_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)
