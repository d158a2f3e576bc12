"""Preconditions commands check before slow work, so a mistake costs one line, not minutes or a traceback:
the split exists, the index exists and holds the dataset's corpus, the model folder or registry version exists."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from searchtune.cli.errors import cluster_message, exit_with, print_warning
from searchtune.data.records import Dataset

#: ``name@alias``, ``name@3`` or ``name:3``: a registry version (names cannot hold '/', folders usually do).
REGISTRY_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:@(?P<sel>[A-Za-z0-9._-]+)|:(?P<num>\d+))$")


def require_split(ds: Dataset, split: str, option: str) -> None:
    """Exit when ``split`` has no judgments, naming the splits there are and the option that picks one
    (Cranfield and NPL have only ``test``)."""
    if split in ds.qrels:
        return
    available = ds.splits
    hint = f"pass {option} {available[0]}" if len(available) == 1 else \
        f"pick one with {option} ({', '.join(available) or 'none available'})"
    exit_with(f"{ds.source or ds.name}: no split '{split}' (available: {', '.join(available) or 'none'}); {hint}")


def _mget(client, index: str, ids: list[str]) -> list[dict]:
    if type(client).__module__.startswith("opensearchpy"):
        return client.mget(index=index, body={"ids": ids})["docs"]
    return client.mget(index=index, ids=ids)["docs"]


def require_index(client, index: str, url: str) -> None:
    """Exit with one line when ``index`` does not exist (or the cluster does not answer)."""
    try:
        exists = bool(client.indices.exists(index=index))
    except Exception as exc:  # noqa: BLE001 - any client failure here is the cluster's, explained in one line
        exit_with(cluster_message(exc, url, index) or f"cannot check index '{index}' at {url}: {exc}")
    if not exists:
        exit_with(f"index '{index}' does not exist at {url}: create it with `searchtune index DATASET --index "
                  f"{index}`, or check the name")


def judged_documents_in_index(client, index: str, ds: Dataset, qrels: dict, sample: int = 30) -> tuple[int, int]:
    """(found, sampled): how many of a sample of judged-relevant documents the index holds with the dataset's own
    text. Ids alone are not enough: Cranfield's ids 1..1400 also occur in other corpora."""
    judged = sorted({d for judged in qrels.values() for d, g in judged.items() if g > 0 and d in ds.corpus})
    step = max(1, len(judged) // sample)
    ids = judged[::step][:sample]
    if not ids:
        return 0, 0
    found = 0
    for doc in _mget(client, index, ids):
        source = doc.get("_source") or {}
        expected = ds.corpus[doc["_id"]]
        if doc.get("found") and (source.get("text", "")[:200] == expected.text[:200]):
            found += 1
    return found, len(ids)


def warn_unless_index_matches(client, index: str, ds: Dataset, qrels: dict) -> bool:
    """Warn (and return False) when the index holds none of the sampled judged documents: every metric would
    quietly be 0 (e.g. ``eval cranfield --index scifact``)."""
    try:
        found, sampled = judged_documents_in_index(client, index, ds, qrels)
    except Exception:  # noqa: BLE001 - the check is advisory; the search itself reports cluster errors
        return True
    if sampled and not found:
        print_warning(f"none of {sampled} judged documents of {ds.name} sampled is in index '{index}' (with the "
                      f"dataset's text): is '{index}' this dataset's index? Index it with `searchtune index "
                      f"{ds.source or 'DATASET'} --index NAME`; every metric below will be 0")
        return False
    return True


@dataclass(frozen=True)
class ModelArgument:
    """A model a command was given: where its files are, and the registry version it came from (if any)."""

    path: str
    registry_name: str | None = None
    registry_version: int | None = None
    store: str | None = None

    @property
    def ref(self) -> str | None:
        return f"{self.registry_name}@{self.registry_version}" if self.registry_name else None


def _looks_like_path(value: str) -> bool:
    """``models/scifact-embd`` is a path (its first part is a folder here, or it has several parts); a hub id is
    ``org/name``. Paths starting with '.', '/' or '~' always are."""
    if value.startswith((".", "/", "~")):
        return True
    if "/" not in value:
        return False
    first = value.split("/", 1)[0]
    return Path(first).expanduser().is_dir() or value.count("/") > 1 or value.endswith("/")


def resolve_model_argument(value: str, option: str, store: str | None = None, hub_ok: bool = True) -> ModelArgument:
    """An existing folder as is; ``name@alias``/``name@N``/``name:N`` from the registry; a hub id only when
    ``hub_ok``. A path that does not exist is said to not exist, before any hub lookup."""
    path = Path(value).expanduser()
    if path.exists():
        return ModelArgument(str(path.resolve()))
    match = REGISTRY_REF.match(value)
    if match and (match.group("sel") or match.group("num")):
        from searchtune.registry import ModelRegistry, RegistryError

        registry = ModelRegistry(store)
        ref = f"{match.group('name')}@{match.group('sel') or match.group('num')}"
        try:
            name, version = registry.resolve_version(ref)
            folder = registry.resolve(f"{name}@{version}")
        except RegistryError as exc:
            exit_with(f"{option} {value}: {exc} (and no folder named '{value}' exists)")
        return ModelArgument(str(folder), name, version, registry.uri)
    if _looks_like_path(value) or not hub_ok:
        exit_with(f"{option} {value}: no such model folder (the path does not exist); check the path, e.g. the "
                  "-o folder of `searchtune train`, or give a registry version NAME@ALIAS")
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not _in_hub_cache(value):
        exit_with(f"{option} {value}: no such model folder (the path does not exist), and no model of that name "
                  "is in the local Hugging Face cache (HF_HUB_OFFLINE=1)")
    return ModelArgument(value)


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - an invalid repo id is simply not cached
        return False
