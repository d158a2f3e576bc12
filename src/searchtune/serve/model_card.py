"""What a served model declares about itself, read once at load time: embedding size, prompts, labels, and
whether it was trained with a Matryoshka loss (the only case in which truncating its vectors is honest).

Why a declaration and not a guess: truncating an ordinary embedding model's vectors returns numbers that look fine
and rank badly, so ``dimensions`` is refused (400) unless the model folder says it was trained for it, either in
``training.json`` / ``config_sentence_transformers.json`` (``"matryoshka_dims": [768, 512, ...]``) or in the
sentence-transformers model card (``README.md`` naming ``MatryoshkaLoss``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_DECLARING_FILES = ("training.json", "config_sentence_transformers.json")


@dataclass(frozen=True)
class ModelCard:
    dimension: int = 0
    prompts: dict[str, str] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    matryoshka: bool = False
    matryoshka_dims: tuple[int, ...] = ()

    def describe(self, kind: str) -> dict[str, Any]:
        if kind == "cross-encoder":
            return {"labels": [self.labels[k] for k in sorted(self.labels)]}
        return {"dimension": self.dimension, "matryoshka": self.matryoshka,
                "matryoshka_dims": list(self.matryoshka_dims), "prompts": sorted(self.prompts)}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_model_card(folder: str | Path) -> ModelCard:
    folder = Path(folder)
    dims: list[int] = []
    declared = False
    for name in _DECLARING_FILES:
        value = _json(folder / name).get("matryoshka_dims")
        if isinstance(value, list) and value:
            declared = True
            dims += [int(v) for v in value if isinstance(v, int) and v > 0]
    try:
        readme = (folder / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        readme = ""
    declared = declared or "MatryoshkaLoss" in readme
    return ModelCard(matryoshka=declared, matryoshka_dims=tuple(sorted(set(dims), reverse=True)))
