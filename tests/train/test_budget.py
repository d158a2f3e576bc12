"""The time-budget callback stops training and asks for a final evaluation only when it would score new steps."""

from __future__ import annotations

from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback

from searchtune.train.budget import TimeBudgetCallback


def _stop_at(step: int, last_eval: int | None, eval_strategy: str = "epoch") -> TrainerControl:
    args = TrainingArguments(output_dir="unused", eval_strategy=eval_strategy, report_to=[], use_cpu=True)
    callback = TimeBudgetCallback(seconds=0.0, min_new_steps=5)
    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    if last_eval is not None:
        state.global_step = last_eval
        callback.on_evaluate(args, state, control)
    state.global_step = step
    return callback.on_step_end(args, state, control)


def test_budget_stops_and_scores_new_steps() -> None:
    control = _stop_at(step=30, last_eval=20)
    assert control.should_training_stop and control.should_evaluate and control.should_save


def test_budget_skips_a_redundant_final_evaluation() -> None:
    control = _stop_at(step=27, last_eval=26)
    assert control.should_training_stop
    assert not control.should_evaluate and not control.should_save


def test_budget_asks_no_evaluation_of_a_run_that_evaluates_nothing() -> None:
    """``evaluate_dev`` false (the quickstart validates afterwards): the trainer has no evaluator to run, and asking
    it for an evaluation would fail the cut run instead of stopping it."""
    control = _stop_at(step=30, last_eval=None, eval_strategy="no")
    assert control.should_training_stop and not control.should_evaluate


def test_budget_not_reached_changes_nothing() -> None:
    callback = TimeBudgetCallback(seconds=3600)
    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(None, state, control)
    state.global_step = 3
    assert not callback.on_step_end(None, state, control).should_training_stop


def test_a_cut_scored_at_its_step_is_not_scored_again_at_epoch_end(tmp_path) -> None:
    """The trainer's own flow (epoch evaluation strategy) asks for an evaluation when the cut ends the epoch; the
    step was just evaluated, so the callback withdraws the request."""
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="epoch", save_strategy="epoch",
                             report_to=[], use_cpu=True)
    budget = TimeBudgetCallback(seconds=0.0, min_new_steps=5)
    handler = CallbackHandler([DefaultFlowCallback, budget], None, None, None, None)
    state, control = TrainerState(max_steps=52, epoch=1.88), TrainerControl()
    handler.on_train_begin(args, state, control)
    state.global_step = 49
    control = handler.on_step_end(args, state, control)
    assert control.should_training_stop and control.should_evaluate
    handler.on_evaluate(args, state, control, metrics={})
    handler.on_save(args, state, control)
    control.should_evaluate = control.should_save = False  # the trainer resets them once it evaluated and saved
    control = handler.on_epoch_end(args, state, control)
    assert not control.should_evaluate and not control.should_save  # the same checkpoint is not written twice
    state.global_step = 50  # an epoch end after new steps is still evaluated
    budget.stopped_early = False
    control = handler.on_epoch_end(args, state, control)
    assert control.should_evaluate and control.should_save
