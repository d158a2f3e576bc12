"""Everything a quickstart run can be told, with defaults sized for a 2-core laptop and a 30-minute budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class QuickstartOptions:
    dataset: Path
    workdir: Path
    budget_minutes: float = 20.0
    es_url: str | None = None
    index: str | None = None
    reindex: bool = False
    keep_running: bool = False
    model_name: str = "custom-rerank-v1"
    pipeline: str = "bailian-rerank"
    task: str = "embed"
    fields: str = "title,text"
    test_split: str = "test"
    train_split: str = "train"
    dev_fraction: float = 0.1
    max_train_queries: int | None = None
    max_test_queries: int | None = None
    rerank_top_k: int = 100
    max_length: int = 256
    seed: int = 42
    train_overrides: dict = field(default_factory=dict)

    @property
    def store(self) -> str:
        return str(self.workdir / "store")
