"""Training configuration: defaults per task, a YAML file, then CLI overrides; saved resolved with the model.

The defaults are the recipe that won on small data (SciFact, ~800 training queries; see docs/training.md): an
embedder tuned with multiple-negatives ranking and one BM25 hard negative, selected on a dev split by the NDCG@10 of
its fusion with BM25.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from searchtune.data.records import DatasetError

Task = Literal["rerank", "embed"]
RerankLoss = Literal["bce", "lambda", "listnet"]
EmbedLoss = Literal["auto", "mnrl", "cached-mnrl"]

#: Per-task defaults that differ from the field defaults below.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    # the embedder's rate chosen on SciFact's dev carve (docs/training.md: dev fused NDCG@10 0.737 / 0.778 / 0.799 /
    # 0.812 / 0.793 at 3e-5 / 6e-5 / 1e-4 / 2e-4 / 4e-4, 52 steps of 32 triplets with 10 % warm-up)
    "embed": {"loss": "auto", "num_negatives": 1, "learning_rate": 2e-4, "batch_size": 32},
    # the new head (and pooler) at 50x the body's rate: at 2e-5 it never leaves the base rate (docs/reranker.md)
    "rerank": {"loss": "bce", "num_negatives": 7, "learning_rate": 2e-5, "head_learning_rate": 1e-3,
               "batch_size": 16},
}


class TrainConfig(BaseModel):
    """Every knob of a training run. Unknown keys are errors so typos in YAML do not pass silently."""

    model_config = ConfigDict(extra="forbid")

    task: Task
    base_model: str | None = Field(None, description="HF id or path; default: bundled all-MiniLM-L6-v2")
    loss: str = "mnrl"
    learning_rate: float = Field(3e-5, gt=0)
    head_learning_rate: float | None = Field(None, gt=0, description="rerank: the new head's (and pooler's) rate; "
                                             "default: the body's")
    epochs: float | None = Field(None, gt=0, description="default: chosen from the data size (train/schedule.py)")
    max_steps: int = -1
    batch_size: int = Field(32, ge=1)
    mini_batch_size: int = Field(16, ge=1, description="chunk size of cached-mnrl / listwise losses")
    max_length: int = Field(256, ge=8)
    num_negatives: int = Field(1, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = 0.01
    seed: int = 42
    eval_steps: int | None = Field(None, ge=1, description="evaluate (and checkpoint) every N steps; default: per epoch")
    early_stopping_patience: int | None = Field(2, ge=1)
    select_metric: Literal["ndcg@10", "fused_ndcg@10"] = "fused_ndcg@10"
    dev_split: str | None = Field(None, description="judgment split used as dev; default: carve from train")
    dev_fraction: float = Field(0.1, ge=0, lt=1)
    dev_max_queries: int | None = Field(None, ge=1)
    dev_top_k: int = Field(100, ge=1)
    evaluate_dev: bool = Field(True, description="score the dev split during training and keep the best "
                               "checkpoint; false still holds the dev split out (training.json names it) "
                               "and keeps the last step, for callers that validate afterwards")
    mining_top_k: int = Field(30, ge=1)
    fields: str = "title,text"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    report_to: list[str] = Field(default_factory=lambda: ["none"])
    save_total_limit: int = 2
    logging_steps: int = 10
    dataloader_workers: int = 0
    # throughput (train/throughput.py, train/batching.py, train/memory.py)
    group_by_length: bool = Field(True, description="length-grouped batches without duplicate texts")
    attention_dropout: float | None = Field(0.0, ge=0, lt=1, description="None keeps the model's own")
    memory_budget_gib: float | None = Field(None, gt=0, description="decides mnrl vs cached-mnrl for loss 'auto'")
    threads: int | None = Field(None, ge=1, description="torch threads; default: the cores this process may use")

    def check(self) -> TrainConfig:
        allowed = RerankLoss.__args__ if self.task == "rerank" else EmbedLoss.__args__  # type: ignore[attr-defined]
        if self.loss not in allowed:
            raise ValueError(f"loss '{self.loss}' is not valid for {self.task} (choose from {', '.join(allowed)})")
        return self


def load_config(task: Task, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Task defaults < YAML file < CLI overrides (``None`` values in overrides mean "not given")."""
    values: dict[str, Any] = {"task": task, **TASK_DEFAULTS[task]}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DatasetError(path, f"cannot read config: {exc}") from exc
        if not isinstance(loaded, dict):
            raise DatasetError(path, "config must be a mapping of option: value")
        loaded = {key.replace("-", "_"): value for key, value in loaded.items()}
        if loaded.get("task", task) != task:
            raise DatasetError(path, f"config is for task '{loaded['task']}', not '{task}'", field="task")
        values.update(loaded)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return TrainConfig(**values).check()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DatasetError(path or "<options>", first["msg"], field=field) from exc
    except ValueError as exc:
        raise DatasetError(path or "<options>", str(exc), field="loss") from exc
