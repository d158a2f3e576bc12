"""Fixtures for the CLI tests: the real ``searchtune`` command as a subprocess, and a small SciFact subset on disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from searchtune.data import load_dataset
from searchtune.data.split import sample_subset
from searchtune.data.writers import write_beir


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``searchtune ARGS`` as users run it (own process, real stderr, no terminal), wide enough not to wrap."""
    full_env = {**os.environ, "COLUMNS": "250", **(env or {})}
    return subprocess.run([sys.executable, "-m", "searchtune.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


def assert_one_error(result: subprocess.CompletedProcess, *fragments: str, code: int = 1) -> str:
    """Exit ``code``, exactly one ``error:`` line holding every fragment, and no traceback anywhere."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert result.returncode == code, output
    return errors[0]


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def one_error():
    return assert_one_error


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A port some other program listens on (a plain socket bound to 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.fixture()
def dead_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def mini_dataset(scifact_dir: Path, tmp_path_factory) -> Path:
    """SciFact's first 16 train and 8 test queries, their judged documents and 300 distractors, in the shared
    collection's own layout (``<name>/beir_format_derived``)."""
    subset = sample_subset(load_dataset(scifact_dir), {"train": 16, "test": 8}, distractors=300, name="mini")
    return write_beir(subset, tmp_path_factory.mktemp("datasets") / "mini" / "beir_format_derived")


@pytest.fixture(scope="session")
def mini_index(mini_dataset: Path, es_url: str) -> str:
    """The subset indexed (through the CLI) into the session's real Elasticsearch node."""
    name = "newcomer-mini"
    result = run_cli("index", str(mini_dataset), "--index", name, "--recreate", "--es-url", es_url)
    assert result.returncode == 0, result.stderr
    return name
