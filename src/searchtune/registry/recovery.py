"""How the registry survives writers that die: version numbers are never reused, and what a killed registration
left (a staging folder, a version folder the index never named) is found and removed by the next one."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

from searchtune.storage.lock import pid_alive

log = logging.getLogger(__name__)

#: Staging folders untouched for this long are abandoned wherever their writer ran.
ABANDONED_AFTER_S = 3600


def next_version(fs: Any, model_dir: str, index: dict[str, Any]) -> int:
    """One above every version ever seen, including folders of a crashed registration that never made it into the
    index (never reuse a number: a number always means the same files). Recorded as ``last_version``."""
    numbers = [int(v) for v in index["versions"]]
    numbers.append(int(index.get("last_version", 0)))
    vdir = f"{model_dir}/versions"
    if fs.exists(vdir):
        numbers += [int(p.rstrip("/").rsplit("/", 1)[-1]) for p in fs.ls(vdir, detail=False)
                    if p.rstrip("/").rsplit("/", 1)[-1].isdigit()]
    version = max(numbers, default=0) + 1
    index["last_version"] = version
    return version


def staging_name() -> str:
    """``<host>~<pid>~<random>``: lets a later run tell a dead registration's staging folder from a live one."""
    return f"{socket.gethostname()}~{os.getpid()}~{uuid.uuid4().hex}"


def _owner_gone(folder: str) -> bool:
    host, _, rest = folder.partition("~")
    pid = rest.partition("~")[0]
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


def cleanup_staging(fs: Any, model_dir: str) -> None:
    """Remove staging folders of registrations that cannot finish any more: on this host, those whose process is
    gone (a SIGKILLed ``models register``); anywhere, those abandoned for :data:`ABANDONED_AFTER_S`."""
    try:
        entries = fs.ls(f"{model_dir}/.staging", detail=True)
    except FileNotFoundError:
        return
    cutoff = time.time() - ABANDONED_AFTER_S
    for entry in entries:
        mtime = entry.get("mtime") or entry.get("created")
        old = isinstance(mtime, (int, float)) and mtime < cutoff
        if old or _owner_gone(entry["name"].rstrip("/").rsplit("/", 1)[-1]):
            log.info("removing abandoned staging folder %s", entry["name"])
            try:
                fs.rm(entry["name"], recursive=True)
            except FileNotFoundError:  # another registration cleaned it first
                pass


def remove_orphan_versions(fs: Any, model_dir: str, index: dict[str, Any]) -> None:
    """Under the lock: version folders the index does not name were moved in by a registration killed before it
    wrote the index (or left by a killed delete); nobody can see them, so they go (their numbers stay used)."""
    vdir = f"{model_dir}/versions"
    if not fs.exists(vdir):
        return
    for path in fs.ls(vdir, detail=False):
        number = path.rstrip("/").rsplit("/", 1)[-1]
        if number.isdigit() and number not in index["versions"]:
            log.warning("removing orphan version folder %s (a registration died before naming it)", path)
            index["last_version"] = max(int(index.get("last_version", 0)), int(number))
            try:
                fs.rm(path, recursive=True)
            except FileNotFoundError:  # a delete() finishing its own cleanup
                pass
