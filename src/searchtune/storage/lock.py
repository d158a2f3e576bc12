"""A lock file on any fsspec store that a crashed holder cannot keep.

The lock is a small JSON file ``{token, pid, host, acquired, heartbeat}`` created exclusively (``O_EXCL`` locally;
create-if-absent then read-back elsewhere, best effort where the store has no conditional write). While held, a
daemon thread refreshes ``heartbeat`` every ``heartbeat_s`` seconds. A waiter takes the lock over when its holder is
gone: on the same host a holder pid that no longer exists (a SIGKILLed process: taken over at once), anywhere a
heartbeat older than ``stale_after_s`` (a dead machine, a frozen process: seconds, not minutes). Release and
heartbeat check the token first, so a holder that lost its lock never deletes or refreshes another's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from searchtune.storage.atomic import atomic_write
from searchtune.storage.fs import is_local

log = logging.getLogger(__name__)


class LockTimeout(TimeoutError):
    """The lock stayed held by a live holder for longer than the caller was willing to wait."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class StoreLock:
    """``with StoreLock(fs, path): ...`` (or :meth:`acquire` / :meth:`release`)."""

    def __init__(self, fs: Any, path: str, timeout: float = 60.0, stale_after_s: float = 10.0,
                 heartbeat_s: float = 2.0) -> None:
        self.fs = fs
        self.path = path
        self.timeout = timeout
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- the file
    def _record(self, acquired: float) -> bytes:
        return json.dumps({"token": self.token, "pid": os.getpid(), "host": self.host, "acquired": acquired,
                           "heartbeat": time.time()}).encode()

    def _read(self) -> dict | None:
        try:
            data = json.loads(self.fs.cat_file(self.path))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return None
        except ValueError:  # a holder died between create and write: judge it by the file's age
            return {}

    def _try_create(self) -> bool:
        record = self._record(time.time())
        if is_local(self.fs):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(record)
                handle.flush()
                os.fsync(handle.fileno())
            return True
        if self.fs.exists(self.path):
            return False
        self.fs.pipe_file(self.path, record)
        return (self._read() or {}).get("token") == self.token

    def _abandoned(self, holder: dict) -> str | None:
        """Why the current holder no longer holds it (``None``: it does)."""
        if holder.get("host") == self.host and isinstance(holder.get("pid"), int) and not pid_alive(holder["pid"]):
            return f"holder pid {holder['pid']} on {self.host} is gone"
        beat = holder.get("heartbeat")
        if not isinstance(beat, (int, float)):
            try:
                beat = self.fs.modified(self.path).timestamp()
            except (FileNotFoundError, NotImplementedError, AttributeError):
                return None
        age = time.time() - beat
        return f"heartbeat {age:.0f}s old" if age > self.stale_after_s else None

    def _take_over_if_abandoned(self) -> None:
        holder = self._read()
        if holder is None:
            return
        reason = self._abandoned(holder)
        if reason is None:
            return
        if (self._read() or {}).get("token") != holder.get("token"):
            return  # someone else took it over meanwhile
        log.warning("taking over lock %s: %s", self.path, reason)
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            pass

    # ---------------------------------------------------------------- heartbeat
    def _beat(self) -> None:
        acquired = time.time()
        while not self._stop.wait(self.heartbeat_s):
            try:
                if (self._read() or {}).get("token") != self.token:
                    log.error("lock %s was taken over while held", self.path)
                    return
                if is_local(self.fs):
                    atomic_write(self.path, self._record(acquired))
                else:
                    self.fs.pipe_file(self.path, self._record(acquired))
            except OSError as exc:  # a transient store fault: try again at the next beat
                log.warning("lock heartbeat for %s failed: %s", self.path, exc)

    # ---------------------------------------------------------------- api
    def acquire(self) -> "StoreLock":
        parent = self.path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while not self._try_create():
            self._take_over_if_abandoned()
            if time.monotonic() > deadline:
                holder = self._read() or {}
                raise LockTimeout(f"timed out after {self.timeout:.0f}s waiting for the lock {self.path} (held by pid "
                                  f"{holder.get('pid', '?')} on {holder.get('host', '?')})")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat:{self.path}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 5)
            self._thread = None
        if (self._read() or {}).get("token") != self.token:
            log.warning("lock %s is no longer ours at release; leaving it", self.path)
            return
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
