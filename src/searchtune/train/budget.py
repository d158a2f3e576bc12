"""Stop training when a wall-clock budget runs out, keeping the best checkpoint evaluated so far.

A CPU laptop and a GPU box should both finish a quickstart in the time the user gave: the same recipe simply
trains for more steps where the hardware is faster.
"""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class TimeBudgetCallback(TrainerCallback):
    """Ends training after ``seconds`` of wall time, with one last evaluation so the final state is scored, unless
    the last evaluation is fewer than ``min_new_steps`` steps old (a dev evaluation can cost minutes on a CPU, and
    scoring a nearly identical model again buys nothing) or the run evaluates nothing (``evaluate_dev`` false: the
    trainer has nothing to evaluate with)."""

    def __init__(self, seconds: float, min_new_steps: int = 5):
        self.seconds = seconds
        self.min_new_steps = min_new_steps
        self.started: float | None = None
        self.stopped_early = False
        self.last_eval_step = 0
        self.last_save_step = -1

    def on_evaluate(self, args, state, control, **kwargs):
        self.last_eval_step = state.global_step

    def on_save(self, args, state, control, **kwargs):
        self.last_save_step = state.global_step

    def on_epoch_end(self, args, state, control, **kwargs):
        """A cut ends the epoch early, and an epoch-end evaluation would score the step just scored again (on
        SciFact's dev set that repeated pass cost 1.6 minutes), and an epoch-end save would write the checkpoint
        just written again."""
        if self.stopped_early and self.last_eval_step == state.global_step:
            control.should_evaluate = False
        if self.stopped_early and self.last_save_step == state.global_step:
            control.should_save = False
        return control

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is None or time.monotonic() - self.started < self.seconds:
            return control
        if not control.should_training_stop:
            log.info("time budget of %.0fs reached at step %d: stopping", self.seconds, state.global_step)
            self.stopped_early = True
            control.should_training_stop = True
            evaluates = getattr(args, "eval_strategy", "no") != "no"  # a str enum
            if evaluates and state.global_step - self.last_eval_step >= self.min_new_steps:
                control.should_evaluate = True
                control.should_save = True
        return control
