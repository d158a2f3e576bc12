"""What both tasks share: training arguments, dev-based checkpoint selection, resume, saving and training.json.

The loop itself is sentence-transformers' trainer (Hugging Face Trainer underneath), so DDP under ``torchrun`` /
``accelerate launch``, checkpointing and ``report_to`` integrations (MLflow, TensorBoard, W&B) come for free.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from searchtune.scoring import cpu_supports_bf16
from searchtune.storage import atomic_write_json
from searchtune.train.config import TrainConfig
from searchtune.train.evaluator import DevRerankEvaluator

log = logging.getLogger(__name__)

TRAINING_JSON = "training.json"
CHECKPOINTS = "checkpoints"


@dataclass
class TrainOutcome:
    """Where the model went and the figures that describe the run (the content of training.json)."""

    output: str
    record: dict[str, Any] = field(default_factory=dict)


def use_bf16(precision: str) -> bool:
    """bf16 mixed precision: on CUDA when supported, on CPU only with AMX/AVX512-BF16 (else it is slower)."""
    if precision == "fp32":
        return False
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return precision == "bf16" or cpu_supports_bf16()


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "torch": torch.__version__, "cpu_count": os.cpu_count(),
                            "cpu_bf16": cpu_supports_bf16(), "world_size": world_size()}
    if torch.cuda.is_available():
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def local_work_dir(output: str) -> Path:
    """Local folder the trainer writes into: the output itself, or a stable cache folder for a store URI."""
    if not is_remote(output):
        return Path(output.removeprefix("file://")).expanduser().resolve()
    import hashlib

    from searchtune.config import searchtune_home

    return Path(searchtune_home()) / "train-work" / hashlib.sha1(output.encode()).hexdigest()[:16]


def training_arguments(args_cls, config: TrainConfig, work_dir: Path, has_dev: bool, bf16: bool, **extra):
    """One place that maps :class:`TrainConfig` onto (SentenceTransformer|CrossEncoder)TrainingArguments."""
    strategy = "steps" if config.eval_steps else "epoch"
    kwargs: dict[str, Any] = dict(
        output_dir=str(work_dir / CHECKPOINTS),
        num_train_epochs=config.epochs or 1.0,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        save_strategy=strategy,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        report_to=config.report_to,
        dataloader_num_workers=config.dataloader_workers,
        disable_tqdm=False,
    )
    if config.eval_steps:
        kwargs["save_steps"] = config.eval_steps
    if has_dev:
        kwargs.update(eval_strategy=strategy, load_best_model_at_end=True,
                      metric_for_best_model=f"eval_dev_{config.select_metric}", greater_is_better=True)
        if config.eval_steps:
            kwargs["eval_steps"] = config.eval_steps
    if world_size() > 1 and not torch.cuda.is_available():
        kwargs["ddp_backend"] = "gloo"
    kwargs.update(extra)
    return args_cls(**kwargs)


def resolve_resume(resume: bool | str | None, work_dir: Path) -> str | bool | None:
    """``True`` resumes from the latest checkpoint when there is one (and starts fresh, with a warning, otherwise)."""
    if not resume:
        return None
    if isinstance(resume, str) and resume not in ("true", "latest"):
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"checkpoint folder not found: {resume}")
        return resume
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = work_dir / CHECKPOINTS
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if last is None:
        log.warning("no checkpoint under %s; starting from scratch", checkpoints)
    return last


def run_trainer(trainer, *, config: TrainConfig, base_model: str, output: str, work_dir: Path,
                evaluator: DevRerankEvaluator | None, pairs_per_example: int, num_examples: int,
                data_info: dict[str, Any], resume: bool | str | None = None,
                keep_checkpoints: bool = False, finalize=None, figures=None) -> TrainOutcome:
    """Train (resuming if asked), keep the best dev checkpoint, save the model folder and training.json.

    ``figures`` (a :class:`~searchtune.train.figures.RunFigures`) adds the schedule and throughput records;
    ``finalize`` adds task-specific figures of the kept model."""
    from searchtune.train.progress import use_concise_progress

    use_concise_progress(trainer, f"training {config.task}")
    checkpoint = resolve_resume(resume, work_dir)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - started
    state = trainer.state
    examples_seen = state.global_step * config.batch_size * world_size()
    if checkpoint:  # steps done before the resume were not timed here
        examples_seen = max(0, examples_seen - _checkpoint_step(checkpoint) * config.batch_size * world_size())
    final_metrics = _best_dev_metrics(evaluator, state.best_metric, config.select_metric)
    record: dict[str, Any] = {
        "task": config.task,
        "base_model": base_model,
        "config": config.model_dump(),
        "data": {**data_info, "train_examples": num_examples},
        "dev": {
            "history": evaluator.history if evaluator is not None else [],
            "best_checkpoint": state.best_model_checkpoint,
            "best_metric": state.best_metric,
            "final": {k: float(v) for k, v in final_metrics.items()},
        },
        "log_history": state.log_history,
        "global_step": state.global_step,
        "epochs_done": state.epoch,
        "resumed_from": checkpoint,
        "train_seconds": round(train_seconds, 2),
        "pairs_per_second": round(examples_seen * pairs_per_example / train_seconds, 2) if train_seconds else None,
        "train_runtime_reported": result.metrics.get("train_runtime"),
        "hardware": hardware(),
        "bf16": bool(trainer.args.bf16),
    }
    if figures is not None:  # throughput counts training only: dev evaluations are timed apart
        eval_seconds = sum(h.get("seconds", 0.0) for h in evaluator.history) if evaluator is not None else 0.0
        steps = state.global_step - (_checkpoint_step(checkpoint) if checkpoint else 0)
        record |= figures.record(trainer, seconds=max(train_seconds - eval_seconds, 1e-9), steps=steps,
                                 pairs=examples_seen * pairs_per_example, bf16=bool(trainer.args.bf16))
    if finalize is not None and is_main_process():  # task-specific figures of the kept model, into training.json
        finalize(trainer.model, record)
    if is_main_process():
        save_model(trainer.model, record, output, work_dir, keep_checkpoints)
    return TrainOutcome(output=output, record=record)


def _best_dev_metrics(evaluator: DevRerankEvaluator | None, best: float | None, metric: str) -> dict[str, float]:
    """Dev metrics of the kept model: the evaluation that produced the best checkpoint (no extra pass needed)."""
    if evaluator is None or not evaluator.history:
        return {}
    chosen = evaluator.history[-1]
    if best is not None:
        chosen = next((h for h in evaluator.history if abs(h[metric] - best) < 1e-12), chosen)
    return {f"dev_{k}": v for k, v in chosen.items() if k not in ("epoch", "step", "seconds")}


def _checkpoint_step(path: str) -> int:
    try:
        return int(Path(path).name.rsplit("-", 1)[-1])
    except ValueError:
        return 0


def save_model(model, record: dict[str, Any], output: str, work_dir: Path, keep_checkpoints: bool) -> None:
    """Model files first, training.json last (atomically), so a folder with training.json is complete."""
    if not keep_checkpoints:
        shutil.rmtree(work_dir / CHECKPOINTS, ignore_errors=True)
    model.save_pretrained(str(work_dir))
    atomic_write_json(work_dir / TRAINING_JSON, record, default=str)
    if is_remote(output):
        publish(work_dir, output)
    log.info("saved model to %s", output)


def publish(local_dir: Path, uri: str) -> None:
    """Copy a finished model folder to any fsspec store (s3://, gcs://, memory://, ...), training.json last."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(uri)
    fs.makedirs(root, exist_ok=True)
    files = sorted(p for p in local_dir.rglob("*") if p.is_file() and p.name != TRAINING_JSON)
    for path in [*files, local_dir / TRAINING_JSON]:
        target = f"{root.rstrip('/')}/{path.relative_to(local_dir).as_posix()}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), target)
