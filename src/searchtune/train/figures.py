"""What a task hands the shared runner so training.json tells how much was trained, how fast, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from searchtune.train.schedule import schedule_record
from searchtune.train.throughput import throughput_record


@dataclass
class RunFigures:
    """``plan`` from :func:`~searchtune.train.schedule.resolve_schedule`; ``texts`` (a
    :class:`~searchtune.train.batching.PretokenizedTexts`) counts the real tokens trained on, when there is one."""

    plan: dict[str, Any]
    threads: int
    texts: Any = None
    memory: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, trainer, *, seconds: float, steps: int, pairs: int, bf16: bool) -> dict[str, Any]:
        tokens = getattr(self.texts, "tokens_seen", None)
        attention_pairs = getattr(self.texts, "attention_pairs_seen", None)
        out: dict[str, Any] = {"schedule": schedule_record(self.plan, trainer),
                               "throughput": throughput_record(trainer.model, seconds=seconds, steps=steps,
                                                               pairs=pairs, tokens=tokens,
                                                               attention_pairs=attention_pairs, bf16=bf16,
                                                               threads=self.threads)}
        if self.memory is not None:
            out["memory_plan"] = self.memory
        return out | self.extra
