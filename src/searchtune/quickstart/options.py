"""Everything a quickstart run can be told, with defaults sized for a 2-core laptop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The run's time cap, not a target: SciFact's planned training takes 5.5-13 minutes on 2 idle cores (plain MNRL on an
#: AMD EPYC; cached MNRL on an Intel AMX machine) and several times that beside other CPU-bound jobs; a 20-minute
#: default once cut an idle run at step 49 of 52 (docs/quickstart.md).
DEFAULT_BUDGET_MINUTES = 90.0


@dataclass
class QuickstartOptions:
    dataset: Path
    workdir: Path
    budget_minutes: float = DEFAULT_BUDGET_MINUTES
    es_url: str | None = None
    index: str | None = None
    reindex: bool = False
    keep_running: bool = False
    model_name: str = "custom-rerank-v1"
    pipeline: str = "bailian-rerank"
    #: 'auto' (both models when the cap allows, quickstart/plan.py), 'embed', 'rerank' or 'both'; the runner
    #: replaces 'auto' with what it decided before training.
    task: str = "auto"
    fields: str = "title,text"
    test_split: str = "test"
    train_split: str = "train"
    dev_fraction: float = 0.1
    max_train_queries: int | None = None
    max_test_queries: int | None = None
    rerank_top_k: int = 100
    #: Mining's guard: also drop unjudged candidates scoring above the positive (the data stage's default: True).
    #: The quickstart turns it off: on the few train queries it uses, the stricter guard left too few negatives.
    mine_drop_above_positive: bool = False
    max_length: int = 256
    seed: int = 42
    #: Embedder loss: 'auto' picks plain MNRL when its memory estimate fits the quickstart's training memory budget
    #: (quickstart/training.py TRAIN_MEMORY_GIB) and cached MNRL (same loss and gradients, in mini-batches) when it
    #: does not (train/memory.py); MNRL at 32 x 256 tokens peaks at 3.7 GB RSS (8.3 GB with attention dropout on).
    embed_loss: str = "auto"
    embed_mini_batch_size: int = 16
    #: How the deployed stack is chosen (eval/selection.py): 'auto' = k-fold CV over every judged training query
    #: below the measured threshold (KFOLD_BELOW, docs/choosing.md), the dev carve above it; or 'kfold' / 'dev'.
    validation: str = "auto"
    #: Training settings that differ from the `train` stage's defaults (keys of TrainConfig), applied last.
    train_overrides: dict = field(default_factory=dict)
    #: The judgment list the dataset was overlaid with (``--judgments``): recorded in the training card.
    judgments_info: dict | None = None
    #: Registry/dataset store (fsspec URI). None: the work folder's own, even when the user has SEARCHTUNE_STORE
    #: set, so a quickstart never registers or promotes models in the user's registry unless told to (--store).
    store_uri: str | None = None

    @property
    def trains_embedder(self) -> bool:
        """The embedder is trained and chosen first ('embed', and 'both' before its cross-encoder)."""
        return self.task in ("embed", "both")

    @property
    def store(self) -> str:
        return self.store_uri or str(self.workdir / "store")
