"""The time-budget callback stops training and asks for a final evaluation only when it would score new steps."""

from __future__ import annotations

from transformers import TrainerControl, TrainerState

from searchtune.train.budget import TimeBudgetCallback


def _stop_at(step: int, last_eval: int | None) -> TrainerControl:
    callback = TimeBudgetCallback(seconds=0.0, min_new_steps=5)
    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(None, state, control)
    if last_eval is not None:
        state.global_step = last_eval
        callback.on_evaluate(None, state, control)
    state.global_step = step
    return callback.on_step_end(None, state, control)


def test_budget_stops_and_scores_new_steps() -> None:
    control = _stop_at(step=30, last_eval=20)
    assert control.should_training_stop and control.should_evaluate and control.should_save


def test_budget_skips_a_redundant_final_evaluation() -> None:
    control = _stop_at(step=27, last_eval=26)
    assert control.should_training_stop
    assert not control.should_evaluate and not control.should_save


def test_budget_not_reached_changes_nothing() -> None:
    callback = TimeBudgetCallback(seconds=3600)
    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(None, state, control)
    state.global_step = 3
    assert not callback.on_step_end(None, state, control).should_training_stop
