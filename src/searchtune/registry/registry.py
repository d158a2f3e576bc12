"""A versioned model registry on any fsspec store (local folder, s3://, oss://, memory://).

Layout under ``<store>/models/<name>/``::

    index.json            versions (card, metrics, files), aliases, alias history  <- the only source of truth
    versions/<n>/...      immutable model files of version n
    .staging/<host>~<pid>~<uuid>/  uploads in progress (invisible until the index names them; recovery.py)
    .lock                 held while the index is read-modified-written

Why this shape: a version becomes visible only when ``index.json`` names it, and ``index.json`` is replaced whole
(written under a temporary name, then renamed), so a crash at any point leaves either the old or the new index,
never a half-registered version. The lock (storage.StoreLock: pid, host, heartbeat, token) serialises
read-modify-write cycles, so two concurrent registrations can never both read version ``n`` and overwrite each
other's entry, and a SIGKILLed holder's lock is taken over in seconds. Files are copied into staging outside the
lock, so a slow upload does not block other writers; what a killed registration leaves is removed by the next
(recovery.py). Reads check every file's size and sha256 against the index before handing out a folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from searchtune.config import searchtune_home, store_uri
from searchtune.registry.recovery import cleanup_staging, next_version, remove_orphan_versions, staging_name
from searchtune.storage import ChecksumError, LockTimeout, StoreLock, atomic_write_json, verify_file

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
#: Optional files inside a model folder that describe how it was trained and how well it did.
CARD_FILE = "training.json"
METRICS_FILE = "metrics.json"


class RegistryError(Exception):
    """Expected registry failure (unknown name/version/alias, refused delete); the message is meant for users."""


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME@3`` or ``NAME@prod``: a model name plus an optional version number or alias."""

    name: str
    selector: str | None = None

    @classmethod
    def parse(cls, ref: str) -> "ModelRef":
        name, _, selector = ref.partition("@")
        if not NAME_RE.match(name):
            raise RegistryError(f"invalid model name '{name}' (letters, digits, '.', '_', '-'; max 128)")
        return cls(name, selector or None)

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}" if self.selector else self.name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ModelRegistry:
    """Register, list, show, promote, roll back, delete and resolve models in one fsspec store."""

    def __init__(self, uri: str | None = None, cache_dir: Path | None = None):
        self.uri = uri or store_uri()
        self.fs, root = fsspec.core.url_to_fs(self.uri)
        self.root = root.rstrip("/")
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.cache_dir = cache_dir or searchtune_home() / "cache" / "models"

    # ---------------------------------------------------------------- paths
    def _model_dir(self, name: str) -> str:
        return f"{self.root}/models/{name}"

    def _index_path(self, name: str) -> str:
        return f"{self._model_dir(name)}/index.json"

    def version_uri(self, name: str, version: int) -> str:
        """Store path of a version's files (protocol-qualified for remote stores)."""
        path = f"{self._model_dir(name)}/versions/{version}"
        return path if self.is_local else self.fs.unstrip_protocol(path)

    # ---------------------------------------------------------------- index io
    def _read_index(self, name: str) -> dict[str, Any] | None:
        path = self._index_path(name)
        try:
            with self.fs.open(path, "rb") as fh:
                return json.loads(fh.read())
        except FileNotFoundError:
            return None

    def _write_index(self, name: str, index: dict[str, Any]) -> None:
        """Replace the index whole (storage.atomic_write: unique temp name, fsync, rename; one PUT remotely)."""
        atomic_write_json(self._index_path(name), index, sort_keys=True, fs=self.fs)

    @contextmanager
    def _locked(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Exclusive lock per model name (storage.StoreLock: a killed holder's lock is taken over in seconds)."""
        try:
            with StoreLock(self.fs, f"{self._model_dir(name)}/.lock", timeout=timeout):
                yield
        except LockTimeout as exc:
            raise RegistryError(str(exc)) from None

    # ---------------------------------------------------------------- queries
    def names(self) -> list[str]:
        base = f"{self.root}/models"
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if self.fs.exists(self._index_path(name)):
                found.append(name)
        return sorted(found)

    def index(self, name: str) -> dict[str, Any]:
        index = self._read_index(name)
        if index is None or not index.get("versions"):
            raise RegistryError(f"no model named '{name}' in {self.uri}")
        return index

    def list(self) -> list[dict[str, Any]]:
        """One summary row per model: versions, aliases, latest."""
        rows = []
        for name in self.names():
            index = self._read_index(name) or {}
            versions = sorted(int(v) for v in index.get("versions", {}))
            if versions:
                rows.append({"name": name, "versions": versions, "latest": versions[-1],
                             "aliases": dict(index.get("aliases", {}))})
        return rows

    def resolve_version(self, ref: str | ModelRef) -> tuple[str, int]:
        """Turn ``NAME``, ``NAME@3``, ``NAME@latest`` or ``NAME@alias`` into ``(name, version)``."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        index = self.index(ref.name)
        versions = sorted(int(v) for v in index["versions"])
        sel = ref.selector
        if sel is None or sel == "latest":
            return ref.name, versions[-1]
        if sel.isdigit():
            if int(sel) not in versions:
                raise RegistryError(f"'{ref.name}' has no version {sel} (versions: {versions})")
            return ref.name, int(sel)
        aliases = index.get("aliases", {})
        if sel not in aliases:
            raise RegistryError(f"'{ref.name}' has no alias '{sel}' (aliases: {sorted(aliases) or 'none'})")
        return ref.name, int(aliases[sel])

    def show(self, ref: str | ModelRef) -> dict[str, Any]:
        """The version entry (card, metrics, files, source) plus its name, number, aliases and store location."""
        name, version = self.resolve_version(ref)
        index = self.index(name)
        entry = dict(index["versions"][str(version)])
        entry.update(name=name, version=version, uri=self.version_uri(name, version),
                     aliases=sorted(a for a, v in index.get("aliases", {}).items() if int(v) == version))
        return entry

    # ---------------------------------------------------------------- writes
    def register(self, name: str, source: str, metrics: dict[str, float] | None = None,
                 description: str = "") -> int:
        """Copy ``source`` (a local folder or any fsspec URI) into the store as the next immutable version."""
        if not NAME_RE.match(name):
            raise RegistryError(f"invalid model name '{name}' (letters, digits, '.', '_', '-'; max 128)")
        src_fs, src_root = fsspec.core.url_to_fs(source)
        if not src_fs.isdir(src_root):
            raise RegistryError(f"model source '{source}' is not a folder")
        files = sorted(p for p in src_fs.find(src_root) if not src_fs.isdir(p))
        if not files:
            raise RegistryError(f"model source '{source}' is empty")
        cleanup_staging(self.fs, self._model_dir(name))  # what a killed registration left behind
        staging = f"{self._model_dir(name)}/.staging/{staging_name()}"
        manifest = {}
        for path in files:
            rel = path[len(src_root.rstrip("/")) + 1:]
            manifest[rel] = self._copy_file(src_fs, path, f"{staging}/{rel}")
        card = self._read_json(src_fs, f"{src_root.rstrip('/')}/{CARD_FILE}", source)
        found_metrics = self._read_json(src_fs, f"{src_root.rstrip('/')}/{METRICS_FILE}", source)
        card_metrics = card.get("metrics") if isinstance(card, dict) else None
        merged_metrics = {**(card_metrics or {}), **(found_metrics or {}), **(metrics or {})}
        with self._locked(name):
            index = self._read_index(name) or {"name": name, "versions": {}, "aliases": {}, "alias_history": {}}
            remove_orphan_versions(self.fs, self._model_dir(name), index)
            version = next_version(self.fs, self._model_dir(name), index)
            final = f"{self._model_dir(name)}/versions/{version}"
            self.fs.makedirs(f"{self._model_dir(name)}/versions", exist_ok=True)
            self.fs.mv(staging, final, recursive=True)
            index["versions"][str(version)] = {
                "created": _now(), "source": source, "description": description,
                "card": card or {}, "metrics": merged_metrics, "files": manifest,
                "size_bytes": sum(f["size"] for f in manifest.values()),
            }
            self._write_index(name, index)
        cleanup_staging(self.fs, self._model_dir(name))
        log.info("registered %s version %d from %s", name, version, source)
        return version

    def promote(self, name: str, version: int | str, alias: str = "prod") -> None:
        """Point ``alias`` at ``version``; the previous target is kept in the alias history for rollback."""
        if not ALIAS_RE.match(alias) or alias == "latest":
            raise RegistryError(f"invalid alias '{alias}' (must start with a letter; 'latest' is reserved)")
        with self._locked(name):
            index = self.index(name)
            if str(version) not in index["versions"]:
                raise RegistryError(f"'{name}' has no version {version}")
            history = index.setdefault("alias_history", {}).setdefault(alias, [])
            if index["aliases"].get(alias) != int(version):
                history.append({"version": int(version), "at": _now()})
            index["aliases"][alias] = int(version)
            self._write_index(name, index)

    def rollback(self, name: str, alias: str = "prod") -> int:
        """Move ``alias`` back to the version it pointed at before the last promote (skipping deleted ones)."""
        with self._locked(name):
            index = self.index(name)
            history = index.get("alias_history", {}).get(alias, [])
            current = index.get("aliases", {}).get(alias)
            if current is None:
                raise RegistryError(f"'{name}' has no alias '{alias}'")
            while history and history[-1]["version"] == current:
                history.pop()
            while history and str(history[-1]["version"]) not in index["versions"]:
                history.pop()
            if not history:
                raise RegistryError(f"alias '{alias}' of '{name}' has no earlier version to roll back to")
            previous = history[-1]["version"]
            index["aliases"][alias] = previous
            self._write_index(name, index)
            return previous

    def delete(self, name: str, version: int | str) -> None:
        """Remove a version; refused while any alias points at it (move or roll back the alias first)."""
        with self._locked(name):
            index = self.index(name)
            if str(version) not in index["versions"]:
                raise RegistryError(f"'{name}' has no version {version}")
            pointing = sorted(a for a, v in index.get("aliases", {}).items() if int(v) == int(version))
            if pointing:
                raise RegistryError(f"refusing to delete {name}@{version}: alias(es) {', '.join(pointing)} "
                                    f"point at it; promote another version or roll back first")
            del index["versions"][str(version)]
            self._write_index(name, index)  # invisible first, then the files go
        try:
            self.fs.rm(f"{self._model_dir(name)}/versions/{version}", recursive=True)
        except FileNotFoundError:
            pass

    # ---------------------------------------------------------------- serving
    def resolve(self, ref: str | ModelRef) -> Path:
        """A local folder holding the version's files: the store folder itself for local stores, else a
        download into the cache (to a temporary folder, renamed into place when complete)."""
        name, version = self.resolve_version(ref)
        if self.is_local:
            return Path(f"{self._model_dir(name)}/versions/{version}")
        files = self.index(name)["versions"][str(version)].get("files", {})
        if self.is_local:
            folder = Path(f"{self._model_dir(name)}/versions/{version}")
            self._verify(folder, files, f"{name}@{version}")
            return folder
        target = self.cache_dir / name / str(version)
        if target.is_dir():
            self._verify(target, files, f"{name}@{version} (cached)")
            return target
        tmp = target.parent / f".{version}.{uuid.uuid4().hex}.tmp"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get(f"{self._model_dir(name)}/versions/{version}/", str(tmp), recursive=True)
            self._verify(tmp, files, f"{name}@{version}")
            os.replace(tmp, target)
        except OSError:  # another process won the race; theirs is complete (and verified) too
            shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @staticmethod
    def _verify(folder: Path, files: dict[str, dict[str, Any]], what: str) -> None:
        """Every file the index lists, with the size and sha256 recorded at registration (serving a corrupt or
        half-copied model is worse than refusing it)."""
        for rel, meta in files.items():
            try:
                verify_file(folder / rel, int(meta["size"]), str(meta["sha256"]), where=f"{what}: {rel}")
            except ChecksumError as exc:
                raise RegistryError(str(exc)) from None

    # ---------------------------------------------------------------- helpers
    def _copy_file(self, src_fs, src: str, dst: str) -> dict[str, Any]:
        digest = hashlib.sha256()
        size = 0
        parent = dst.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        with src_fs.open(src, "rb") as fin, self.fs.open(dst, "wb") as fout:
            while chunk := fin.read(4 << 20):
                digest.update(chunk)
                size += len(chunk)
                fout.write(chunk)
        return {"size": size, "sha256": digest.hexdigest()}

    @staticmethod
    def _read_json(fs, path: str, source: str) -> dict | None:
        if not fs.exists(path):
            return None
        try:
            with fs.open(path, "rb") as fh:
                return json.loads(fh.read())
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{source}/{path.rsplit('/', 1)[-1]}: invalid JSON at line {exc.lineno}: {exc.msg}")


def resolve_model_ref(ref: str, store: str | None = None) -> Path:
    """What ``serve --model`` accepts: an existing folder as is, else a registry reference in ``store``."""
    path = Path(ref).expanduser()
    if path.exists():
        return path.resolve()
    return ModelRegistry(store).resolve(ref)
