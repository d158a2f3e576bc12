"""Run ``searchtune gateway`` as a real subprocess (quickstart, tests, benchmarks) and stop it cleanly."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from searchtune.subprocesses import ChildProcess, searchtune_argv


class GatewayStartError(RuntimeError):
    pass


class GatewayHandle(ChildProcess):
    """The gateway child process (see :class:`searchtune.subprocesses.ChildProcess`)."""


def start_gateway_process(es_url: str, port: int = 0, host: str = "127.0.0.1", timeout_s: float | None = None,
                          extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                          startup_timeout: float = 60.0, admin_key: str | None = None) -> GatewayHandle:
    """Start ``searchtune gateway`` (port 0 = a free port) and wait until it answers health. ``admin_key`` is the
    key pipeline writes must present (``X-Searchtune-Admin-Key``); handed over in the environment, not argv, so
    ``ps`` does not show it."""
    workdir = Path(tempfile.mkdtemp(prefix="searchtune-gateway-"))
    ready = workdir / "url"
    log_path = workdir / "gateway.log"
    cmd = [*searchtune_argv(), "gateway", "--es-url", es_url, "--host", host, "--port", str(port), "--ready-file", str(ready)]
    if timeout_s is not None:
        cmd += ["--timeout", str(timeout_s)]
    cmd += extra_args or []
    full_env = {**os.environ, **(env or {})}
    if admin_key:
        full_env["SEARCHTUNE_GATEWAY_ADMIN_KEY"] = admin_key
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env)
    handle = GatewayHandle(url="", process=process, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = handle.logs()
            handle.stop()
            raise GatewayStartError(f"gateway exited with {process.returncode}:\n{logs[-3000:]}")
        if ready.exists() and ready.read_text().strip():
            handle.url = ready.read_text().strip()
            try:
                if httpx.get(f"{handle.url}/_searchtune/health", timeout=2.0).status_code == 200:
                    return handle
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    logs = handle.logs()
    handle.stop()
    raise GatewayStartError(f"gateway did not become healthy in {startup_timeout:g}s:\n{logs[-3000:]}")
