"""A concise training progress line instead of the Trainer's raw ``{'loss': ..., 'grad_norm': ...}`` dicts.

Hugging Face's ProgressCallback/PrinterCallback print every logged dict (dozens of floats per line, every
``logging_steps``); users need the step, the loss, the time left and the dev score. This callback shows exactly
that through :func:`searchtune.progress.progress` (a bar on a terminal, periodic log lines otherwise).
"""

from __future__ import annotations

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from searchtune.progress import progress


class ConciseProgressCallback(TrainerCallback):
    """step/max_steps with the latest loss (the dev evaluator logs its own line per evaluation)."""

    def __init__(self, description: str = "training"):
        self.description = description
        self._context = None
        self._advance = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._context = progress(self.description, state.max_steps or None)
            self._advance = self._context.__enter__()
            if state.global_step:
                self._advance(state.global_step, info=f"resumed at step {state.global_step}")

    def on_step_end(self, args, state, control, **kwargs):
        if self._advance is not None:
            self._advance(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss", (logs or {}).get("train_loss"))  # train_loss: the run's mean, at the end
        if self._advance is not None and loss is not None:
            self._advance(0, info=f"loss {float(loss):.4f}, epoch {float(state.epoch or 0):.2f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = self._advance = None


def use_concise_progress(trainer, description: str = "training") -> None:
    """Swap the Trainer's dict-printing callbacks for :class:`ConciseProgressCallback`."""
    for noisy in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(noisy)
    trainer.add_callback(ConciseProgressCallback(description))
