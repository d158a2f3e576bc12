"""What one workbench process serves: where it searches, which judgment list it writes, which query sets it offers.

Grades shown on the page are the dataset's judgments (all splits) overridden by the list's: a rater sees what is
already known and only fills the gaps. Queries typed in the box get the dataset's id when the text matches one of
its queries, otherwise a stable id derived from the text (``wb-<sha1>``), so grading the same text twice lands on
the same query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from searchtune.data.records import Dataset, Qrels, Query
from searchtune.workbench.configs import SearchTargets
from searchtune.workbench.judgments import JudgmentList

#: The query set made of every query the list has grades for.
JUDGED_SET = "judged"


@dataclass
class Workbench:
    targets: SearchTargets
    judgments: JudgmentList
    dataset: Dataset | None = None
    max_queries: int = 50
    rater: str = "anonymous"
    _by_text: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.dataset is not None:
            self._by_text = {q.text.strip().lower(): q.id for q in self.dataset.queries.values()}

    # ---------------------------------------------------------------- queries
    def query_sets(self) -> list[str]:
        return [*(self.dataset.splits if self.dataset else []), JUDGED_SET]

    def query_set(self, name: str) -> dict[str, Query]:
        """The set's queries (the first ``max_queries``, in the dataset's order)."""
        if name == JUDGED_SET:
            texts = self.judgments.query_texts()
            known = self.dataset.queries if self.dataset else {}
            queries = {q: known.get(q) or Query(q, texts.get(q, q)) for q in sorted(self.judgments.qrels())}
        elif self.dataset is not None and name in self.dataset.qrels:
            queries = self.dataset.split_queries(name)
        else:
            raise KeyError(name)
        return dict(list(queries.items())[:self.max_queries])

    def query_id(self, text: str) -> str:
        known = self._by_text.get(text.strip().lower())
        return known or "wb-" + hashlib.sha1(text.strip().encode()).hexdigest()[:12]

    def query(self, query_id: str | None, text: str | None) -> Query | None:
        """The query a page asks for: by id (dataset or list), else by text."""
        if query_id:
            if self.dataset is not None and query_id in self.dataset.queries:
                return self.dataset.queries[query_id]
            listed = self.judgments.query_texts().get(query_id)
            if listed:
                return Query(query_id, listed)
        if text and text.strip():
            return Query(self.query_id(text), text.strip())
        return None

    # ---------------------------------------------------------------- grades
    def grades(self) -> Qrels:
        """Dataset judgments of every split, overridden by the list's latest grades."""
        merged: Qrels = {}
        for qrels in (self.dataset.qrels.values() if self.dataset else []):
            for qid, docs in qrels.items():
                merged.setdefault(qid, {}).update(docs)
        for qid, docs in self.judgments.qrels().items():
            merged.setdefault(qid, {}).update(docs)
        return merged
