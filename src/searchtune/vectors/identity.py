"""Which model made a vector: a fingerprint of the model's weights, the same wherever the model is loaded from.

Vectors from two model versions live in different spaces; comparing a query embedded by one with documents embedded
by the other silently returns garbage. So every index with vectors records the fingerprint of the model that built
them, `searchtune serve` reports the fingerprint of the model it serves, and the gateway compares the two before it
trusts a kNN search. A registry version and the folder it was registered from have the same fingerprint (the same
weight files), so ``name@prod`` and ``./models/x`` are recognised as one model.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Files whose bytes decide what a model computes (weights, architecture, tokenizer vocabulary, pooling).
_IDENTITY_SUFFIXES = (".safetensors", ".bin")
_IDENTITY_NAMES = ("config.json", "modules.json", "tokenizer.json", "vocab.txt", "1_Pooling/config.json")


def model_fingerprint(folder: str | Path) -> str | None:
    """16 hex digits of sha256 over the folder's weights and config files (``None`` when it is not a folder).

    Checkpoints, training cards, metrics and ONNX exports are left out: they do not change the vectors of the
    saved model."""
    root = Path(folder)
    if not root.is_dir():
        return None
    files = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(_IDENTITY_SUFFIXES))
    files += [root / name for name in _IDENTITY_NAMES if (root / name).is_file()]
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(4 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ModelIdentity:
    """What an index records about the model behind its vectors (``_meta.searchtune.model`` in the mapping)."""

    id: str                       # what users call it: a registry ref (name@3), a folder name, an HF id or URL model
    version: int | None = None    # registry version, when it came from the registry
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ModelIdentity | None":
        if not isinstance(data, dict) or not data.get("id"):
            return None
        version = data.get("version")
        return cls(id=str(data["id"]), version=int(version) if version is not None else None,
                   fingerprint=data.get("fingerprint"))

    def matches(self, other: "ModelIdentity") -> tuple[bool, str]:
        """Same model? Fingerprints decide when both sides have one; otherwise the ids must be equal.

        Returns ``(ok, why)``; ``why`` names the difference for a fallback reason."""
        if self.fingerprint and other.fingerprint:
            if self.fingerprint == other.fingerprint:
                return True, ""
            return False, f"index vectors are from {self.id} ({self.fingerprint}), query model is {other.id} " \
                          f"({other.fingerprint})"
        if self.id == other.id and (self.version is None or other.version is None or self.version == other.version):
            return True, ""
        return False, f"index vectors are from {self.id}, query model is {other.id} (no fingerprint to compare)"
