"""How much to train: a fixed amount chosen from the data size; a time budget may only cut it short.

Training until a wall clock runs out makes the model depend on how busy the machine was (the issue measured 56 vs
16 steps, and a test NDCG@10 0.022 apart, for the same command). Here the amount is a function of the data:

    epochs = 2 below 5,000 training rows, else 1;   steps = epochs x ceil(rows / batch size)

Small judged sets need a second pass (SciFact's embedder: dev fused NDCG@10 0.751 / 0.756 / 0.756 after epochs
1-3, so the third buys nothing); large ones converge within one. ``--epochs`` or ``--max-steps`` override the rule.
A time budget (:class:`~searchtune.train.budget.TimeBudgetCallback`) is a cap: when it stops training before the
planned steps, the record says so and the caller reports it.
"""

from __future__ import annotations

import math
from typing import Any

from searchtune.train.config import TrainConfig

SMALL_DATA_ROWS = 5000
SMALL_DATA_EPOCHS = 2.0
LARGE_DATA_EPOCHS = 1.0


def planned_epochs(rows: int) -> float:
    return SMALL_DATA_EPOCHS if rows < SMALL_DATA_ROWS else LARGE_DATA_EPOCHS


def resolve_schedule(config: TrainConfig, rows: int, processes: int = 1) -> tuple[TrainConfig, dict[str, Any]]:
    """``config`` with ``epochs`` filled in by the rule when not given, and the plan for training.json."""
    steps_per_epoch = max(1, math.ceil(rows / (config.batch_size * processes)))
    if config.max_steps and config.max_steps > 0:
        epochs, rule = config.epochs or 1.0, "max_steps given"
        steps = config.max_steps
    elif config.epochs is not None:
        epochs, rule = config.epochs, "epochs given"
        steps = math.ceil(epochs * steps_per_epoch)
    else:
        epochs = planned_epochs(rows)
        rule = f"{epochs:g} epochs for {rows} rows ({'<' if rows < SMALL_DATA_ROWS else '>='} {SMALL_DATA_ROWS})"
        steps = math.ceil(epochs * steps_per_epoch)
    plan = {"rows": rows, "steps_per_epoch": steps_per_epoch, "epochs": epochs, "planned_steps": steps, "rule": rule}
    return config.model_copy(update={"epochs": epochs}), plan


def schedule_record(plan: dict[str, Any], trainer) -> dict[str, Any]:
    """The plan plus what happened: steps done, and whether a time budget or early stopping ended the run."""
    from searchtune.train.budget import TimeBudgetCallback

    done = trainer.state.global_step
    budget = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TimeBudgetCallback)), None)
    cut = bool(budget and budget.stopped_early)
    record = {**plan, "steps_done": done, "cut_by_time_budget": cut,
              "time_budget_seconds": budget.seconds if budget else None}
    if cut:
        record["note"] = (f"the time budget of {budget.seconds:.0f}s cut training at step {done} of "
                          f"{plan['planned_steps']}: this model depends on machine load; rerun with a larger budget")
    elif done < plan["planned_steps"]:
        record["note"] = f"early stopping ended training at step {done} of {plan['planned_steps']}"
    return record


def budget_cut_note(record: dict[str, Any]) -> str | None:
    """The line reports and the CLI print first when a time budget cut training; ``None`` when it did not."""
    schedule = record.get("schedule") or {}
    return schedule.get("note") if schedule.get("cut_by_time_budget") else None
