"""Our own servers as real child processes (the model endpoint, the gateway, the workbench): the one place that knows how to find
the ``searchtune`` command, pick a free loopback port, and stop a child gracefully."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port`` (a bind with SO_REUSEADDR fails only then)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def searchtune_argv() -> list[str]:
    """``searchtune`` from this interpreter's environment (``python -c`` when the script is not installed)."""
    script = Path(sys.executable).parent / "searchtune"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from searchtune.cli.main import app; app()"]


@dataclass
class ChildProcess:
    """A started server: its URL, process and log file. ``stop`` is idempotent; usable as a context manager."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.logs()[-chars:]

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful: in-flight requests finish), then SIGKILL after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def launch(args: list[str], name: str, health_path: str, env: dict[str, str] | None = None,
           startup_timeout: float = 60.0, handle_cls: type[ChildProcess] = ChildProcess,
           error_cls: type[Exception] = RuntimeError) -> ChildProcess:
    """Start ``searchtune ARGS --ready-file F`` (a server that writes its URL to F once bound) and return once
    ``{url}{health_path}`` answers 200; on exit or timeout stop it and raise ``error_cls`` with its log's tail."""
    workdir = Path(tempfile.mkdtemp(prefix=f"searchtune-{name}-"))
    ready, log_path = workdir / "url", workdir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([*searchtune_argv(), *args, "--ready-file", str(ready)], stdout=log_file,
                                   stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    handle = handle_cls(url="", process=process, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = handle.logs()
            handle.stop()
            raise error_cls(f"{name} exited with {process.returncode}:\n{logs[-3000:]}")
        if ready.exists() and ready.read_text().strip():
            handle.url = ready.read_text().strip()
            try:
                if httpx.get(f"{handle.url}{health_path}", timeout=2.0).status_code == 200:
                    return handle
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    logs = handle.logs()
    handle.stop()
    raise error_cls(f"{name} did not become healthy in {startup_timeout:g}s:\n{logs[-3000:]}")
