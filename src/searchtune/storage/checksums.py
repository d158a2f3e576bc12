"""sha256 checksums of stored files, and the check a reader makes before trusting one."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


class ChecksumError(Exception):
    """A stored file is missing, or its size or sha256 differs from what its manifest recorded."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, fs: Any = None, chunk: int = 1 << 20) -> str:
    """sha256 of a local file, or of ``path`` inside fsspec filesystem ``fs``."""
    digest = hashlib.sha256()
    with (fs.open(path, "rb") if fs is not None else open(path, "rb")) as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | Path, size: int, sha256: str, where: str | None = None, fs: Any = None) -> None:
    """Raise :class:`ChecksumError` (naming ``where``, default ``path``) unless the file has this size and sha256."""
    where = where or str(path)
    try:
        actual_size = fs.size(path) if fs is not None else Path(path).stat().st_size
    except FileNotFoundError:
        raise ChecksumError(f"{where}: listed in the manifest but missing") from None
    if actual_size != size:
        raise ChecksumError(f"{where}: size {actual_size} bytes, manifest says {size}")
    actual = sha256_file(path, fs)
    if actual != sha256:
        raise ChecksumError(f"{where}: sha256 {actual[:12]}... does not match the manifest's {sha256[:12]}... "
                            "(corrupt or changed after it was written)")
