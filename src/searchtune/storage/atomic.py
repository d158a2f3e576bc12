"""Atomic writes: readers see the old file or the new one, never a half-written one, and two writers never share a
temporary file.

Locally the content goes to a unique temporary name in the target's folder (``.NAME.<random>.tmp``), is flushed and
fsynced, then renamed over the target (``os.replace``, atomic on POSIX), and the folder is fsynced so the rename
itself survives a power cut. On object stores (``s3://``...) one PUT already appears whole, so the content is
uploaded to the final name directly. A failure removes the temporary file and leaves the target untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from searchtune.storage.fs import filesystem, is_local


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """A handle on a unique temporary file beside local ``path``; on a clean exit it is fsynced and renamed into
    place, on an exception it is removed (``path`` keeps its old content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(target: str | Path, data: bytes | str, fs: Any = None, **storage_options: Any) -> None:
    """Write ``data`` to a local path or any fsspec URI (or ``target`` inside filesystem ``fs``) atomically (see
    the module docstring)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if fs is not None:
        if is_local(fs):
            with atomic_writer(Path(target), "wb") as handle:
                handle.write(payload)
        else:
            fs.pipe_file(str(target), payload)
        return
    if "://" not in str(target) or str(target).startswith("file://"):
        local = Path(str(target).removeprefix("file://"))
        with atomic_writer(local, "wb") as handle:
            handle.write(payload)
        return
    fs, path = filesystem(str(target), **storage_options)
    if is_local(fs):
        with atomic_writer(Path(path), "wb") as handle:
            handle.write(payload)
    else:
        fs.pipe_file(path, payload)  # one PUT: the object appears whole or not at all


def atomic_write_json(target: str | Path, payload: Any, indent: int | None = 2, fs: Any = None,
                      **json_options: Any) -> None:
    """``json.dumps`` of ``payload`` written atomically (``default``/``sort_keys``... go to ``json.dumps``)."""
    atomic_write(target, json.dumps(payload, indent=indent, **json_options), fs=fs)
