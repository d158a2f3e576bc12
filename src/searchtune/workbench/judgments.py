"""Versioned judgment lists in the store: what raters graded in the workbench, kept so that no grade is ever lost.

A list lives at ``{store}/judgments/{name}/`` as three files, each replaced atomically (storage.atomic_write):

* ``judgments.jsonl`` -- the source of truth: one event per grade ``{version, query_id, query, doc_id, grade,
  rater, time}``, append-only. Version ``N`` of the list is every event up to number ``N`` (the last grade of a
  pair wins), so any version can be rebuilt exactly, and training records which one it used.
* ``qrels.txt`` -- the latest version as TREC qrels (``qid 0 docid grade``), what other tools read.
* ``list.json`` -- name, scale, the dataset and index it was judged on, current version, the qrels' sha256.

Why lock, re-read, merge: two browsers (or two workbench processes) grading the same list each hold a stale copy.
A writer takes the list's :class:`~searchtune.storage.StoreLock`, re-reads the log from the store, appends its
events after the newest one and writes the whole log back; a concurrent writer waits for the lock and then sees
those events. Nothing is written outside the lock, so no grade is lost and no file is ever half-written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from searchtune.config import store_uri
from searchtune.data.records import Qrels
from searchtune.storage import StoreLock, atomic_write, atomic_write_json, filesystem, sha256_bytes

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: The grades each scale accepts (binary lists are what many click-style raters produce).
SCALES = {"graded": (0, 1, 2, 3), "binary": (0, 1)}


class JudgmentError(ValueError):
    """Bad list name, version or grade; the message names what was wrong and is meant for users."""


@dataclass(frozen=True)
class Grade:
    """One rater's grade of one document for one query (what the page posts)."""

    query_id: str
    query: str
    doc_id: str
    grade: int
    rater: str


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (latest) or ``NAME@VERSION``."""
    name, _, version = ref.partition("@")
    if not NAME_RE.match(name):
        raise JudgmentError(f"invalid judgment list name {name!r} (letters, digits, '.', '_', '-'; max 128)")
    if version and not version.isdigit():
        raise JudgmentError(f"judgment list {ref!r}: the version after '@' must be a number")
    return name, int(version) if version else None


def qrels_at(events: list[dict[str, Any]], version: int | None = None) -> Qrels:
    """The list's judgments as of ``version`` (default: all): the last grade of each (query, document) pair."""
    qrels: Qrels = {}
    for event in events:
        if version is None or event["version"] <= version:
            qrels.setdefault(event["query_id"], {})[event["doc_id"]] = int(event["grade"])
    return qrels


def trec_qrels(qrels: Qrels) -> str:
    """TREC qrels text (``qid 0 docid grade``), sorted so equal lists give equal bytes (and sha256)."""
    return "".join(f"{qid} 0 {did} {grade}\n" for qid in sorted(qrels) for did, grade in sorted(qrels[qid].items()))


class JudgmentList:
    """One named list in a store (``SEARCHTUNE_STORE`` by default)."""

    def __init__(self, name: str, store: str | None = None) -> None:
        self.name, _ = parse_ref(name)
        self.store = store or store_uri()
        self.fs, root = filesystem(self.store)
        self.folder = f"{root}/judgments/{self.name}"

    # ---------------------------------------------------------------- reading
    def _path(self, file: str) -> str:
        return f"{self.folder}/{file}"

    def exists(self) -> bool:
        return self.fs.exists(self._path("list.json"))

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.fs.cat_file(self._path("list.json")))
        except FileNotFoundError:
            raise JudgmentError(f"no judgment list named {self.name!r} in {self.store}") from None

    def events(self) -> list[dict[str, Any]]:
        """Every grade ever given, oldest first."""
        try:
            text = self.fs.cat_file(self._path("judgments.jsonl")).decode("utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def qrels(self, version: int | None = None) -> Qrels:
        events = self.events()
        latest = events[-1]["version"] if events else 0
        if version is not None and not 0 <= version <= latest:
            raise JudgmentError(f"judgment list {self.name!r} has versions 0..{latest}, not {version}")
        return qrels_at(events, version)

    def query_texts(self) -> dict[str, str]:
        """Query id -> text as the raters saw it (typed queries exist nowhere else)."""
        return {e["query_id"]: e["query"] for e in self.events() if e.get("query")}

    def qrels_path(self) -> str:
        return self._path("qrels.txt")

    # ---------------------------------------------------------------- writing
    def _lock(self) -> StoreLock:
        return StoreLock(self.fs, self._path(".lock"), timeout=30.0)

    def create(self, scale: str = "graded", dataset: str | None = None, index: str | None = None) -> dict[str, Any]:
        """Create the list unless it exists (then its metadata is returned unchanged)."""
        if scale not in SCALES:
            raise JudgmentError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        with self._lock():
            if self.exists():
                return self.meta()
            meta = {"name": self.name, "scale": scale, "dataset": dataset, "index": index, "version": 0,
                    "created": _now(), "updated": _now(), "qrels_sha256": sha256_bytes(b"")}
            atomic_write(self._path("qrels.txt"), "", fs=self.fs)
            atomic_write(self._path("judgments.jsonl"), "", fs=self.fs)
            atomic_write_json(self._path("list.json"), meta, fs=self.fs)
            return meta

    def record(self, grades: list[Grade]) -> int:
        """Append ``grades`` as new versions (lock, re-read, merge, write atomically); returns the new version."""
        meta = self.meta()
        allowed = SCALES[meta["scale"]]
        for g in grades:
            if g.grade not in allowed:
                raise JudgmentError(f"grade {g.grade} for document {g.doc_id!r} is outside the list's "
                                    f"{meta['scale']} scale {allowed}")
            if not g.query_id or not g.doc_id:
                raise JudgmentError("a grade needs a query_id and a doc_id")
        with self._lock():
            events = self.events()  # re-read under the lock: another writer may have added some
            version = events[-1]["version"] if events else 0
            for g in grades:
                version += 1
                events.append({"version": version, "query_id": g.query_id, "query": g.query, "doc_id": g.doc_id,
                               "grade": g.grade, "rater": g.rater or "anonymous", "time": _now()})
            log = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events)
            qrels = trec_qrels(qrels_at(events))
            atomic_write(self._path("judgments.jsonl"), log, fs=self.fs)
            atomic_write(self._path("qrels.txt"), qrels, fs=self.fs)
            meta = {**self.meta(), "version": version, "updated": _now(), "qrels_sha256": sha256_bytes(qrels.encode())}
            atomic_write_json(self._path("list.json"), meta, fs=self.fs)
        return version


def list_names(store: str | None = None) -> list[str]:
    """Every judgment list in the store."""
    fs, root = filesystem(store or store_uri())
    base = f"{root}/judgments"
    if not fs.exists(base):
        return []
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(base, detail=False)]
    return sorted(n for n in names if fs.exists(f"{base}/{n}/list.json"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
