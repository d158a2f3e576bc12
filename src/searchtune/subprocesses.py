"""Our own servers as real child processes (the model endpoint, the gateway): the one place that knows how to find
the ``searchtune`` command, pick a free loopback port, and stop a child gracefully."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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
