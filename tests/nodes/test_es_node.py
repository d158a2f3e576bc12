"""The managed Elasticsearch node: idempotent start, stop when nothing runs, clear errors without a JDK."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.nodes.elasticsearch_node import elasticsearch_node
from searchtune.nodes.java import JavaNotFoundError, find_java_home

runner = CliRunner()


def test_fixture_node_is_healthy(es) -> None:
    health = es.cluster.health()
    assert health["status"] in ("green", "yellow")
    versions = {n["version"] for n in es.nodes.info(filter_path="nodes.*.version")["nodes"].values()}
    assert all(v.startswith("9.") for v in versions)


@pytest.mark.skipif(bool(os.environ.get("SEARCHTUNE_ES_URL")), reason="an external cluster is in use; no managed node to restart")
def test_es_start_twice_is_idempotent(es_node) -> None:
    node = elasticsearch_node(name=es_node.name, port=es_node.port)
    pid_before = node.pid()
    assert pid_before is not None
    result = runner.invoke(app, ["es", "start", "--name", es_node.name, "--port", str(es_node.port)])
    assert result.exit_code == 0, result.output
    assert "already running" in result.output
    assert node.pid() == pid_before
    status = runner.invoke(app, ["es", "status", "--name", es_node.name, "--port", str(es_node.port)])
    assert status.exit_code == 0 and "healthy" in status.output


def test_es_stop_when_nothing_runs() -> None:
    result = runner.invoke(app, ["es", "stop", "--name", "never-started", "--port", "9299"])
    assert result.exit_code == 0, result.output
    assert "was not running" in result.output
    status = runner.invoke(app, ["es", "status", "--name", "never-started", "--port", "9299"])
    assert status.exit_code == 1 and "stopped" in status.output


def test_missing_java_is_explained(monkeypatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/nonexistent/jdk")
    with pytest.raises(JavaNotFoundError) as err:
        find_java_home(min_version=99)
    message = str(err.value)
    assert "Java 99+ is required" in message and "/nonexistent/jdk" in message and "JAVA_HOME" in message


def test_finds_java_21_or_newer() -> None:
    from searchtune.nodes.java import java_major_version

    home = find_java_home(21)
    assert (java_major_version(home) or 0) >= 21
