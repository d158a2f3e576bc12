"""Run ``searchtune serve`` as a real subprocess (tests, eval, gateway, quickstart): free port, wait for /ready."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from searchtune.subprocesses import ChildProcess, free_port, searchtune_argv


class ServerStartError(RuntimeError):
    pass


@dataclass
class ServerProcess(ChildProcess):
    port: int = 0


def start_server_process(model_ref: str, port: int = 0, backend: str = "auto",
                         extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                         api_key: str | None = None, host: str = "127.0.0.1",
                         ready_timeout: float = 300.0) -> ServerProcess:
    """Launch ``searchtune serve --model model_ref`` on ``host`` (a free port when ``port`` is 0) and return once
    ``/ready`` answers 200. The API key travels in the environment, never on the command line."""
    attempts = 3 if port == 0 else 1
    last_error = ""
    for _ in range(attempts):
        chosen = port or free_port(host)
        log_file = tempfile.NamedTemporaryFile(prefix=f"searchtune-serve-{chosen}-", suffix=".log", delete=False)
        child_env = {**os.environ, **(env or {})}
        child_env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if api_key:
            child_env["SEARCHTUNE_API_KEY"] = api_key
        argv = [*searchtune_argv(), "serve", "--model", model_ref, "--backend", backend, "--host", host,
                "--port", str(chosen), *extra_args]
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=child_env,
                                start_new_session=True)
        handle = ServerProcess(url=f"http://{host}:{chosen}", port=chosen, process=proc, log_path=Path(log_file.name))
        deadline = time.monotonic() + ready_timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    response = client.get(f"{handle.url}/ready")
                    if response.status_code == 200:
                        return handle
                    if response.status_code == 500:  # the model failed to load: no point waiting
                        handle.stop(5)
                        raise ServerStartError(f"server failed to load {model_ref}: {response.text}\n"
                                               f"{handle.log_tail()}")
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        handle.stop(5)
        last_error = handle.log_tail()
        if "address already in use" not in last_error.lower():
            break
    raise ServerStartError(f"searchtune serve --model {model_ref} did not become ready:\n{last_error}")
