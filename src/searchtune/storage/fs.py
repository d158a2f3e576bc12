"""fsspec access in one place: a URI or path becomes ``(filesystem, root path)``."""

from __future__ import annotations

from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


def filesystem(uri: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``uri`` and the path inside it (no trailing slash)."""
    fs, root = fsspec.core.url_to_fs(str(uri), **storage_options)
    return fs, root.rstrip("/") or root


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Local disk: where rename is atomic and fsync means durable (object stores replace whole objects instead)."""
    return isinstance(fs, LocalFileSystem)
