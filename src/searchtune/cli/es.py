"""``searchtune es``: the local Elasticsearch node (start, stop, status)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from searchtune.cli.common import fail, out
from searchtune.search.elasticsearch_node import ELASTICSEARCH_VERSION, elasticsearch_node
from searchtune.search.java import JavaNotFoundError
from searchtune.search.node import NodeError

app = typer.Typer(help=f"Run a local single-node Elasticsearch {ELASTICSEARCH_VERSION} (fetched from Maven Central "
                       "with mvn, cached, security off, bound to 127.0.0.1).", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", help="Node name: each name has its own data folder and pid file.")]
PortOpt = Annotated[int, typer.Option("--port", envvar="SEARCHTUNE_ES_PORT", help="HTTP port (transport uses port+100).")]


@app.command()
def start(name: NameOpt = "default", port: PortOpt = 9200,
          heap: Annotated[str, typer.Option(envvar="SEARCHTUNE_ES_HEAP", help="JVM heap, e.g. 512m or 2g.")] = "1g",
          timeout: Annotated[float, typer.Option(help="Seconds to wait for cluster health.")] = 180.0) -> None:
    """Start the node (idempotent: a running healthy node is left as it is) and wait until it is healthy."""
    node = elasticsearch_node(name=name, port=port, heap=heap)
    try:
        was_running = node.pid() is not None
        url = node.start(timeout=timeout)
    except (NodeError, JavaNotFoundError) as exc:
        fail(str(exc))
    out.print(f"elasticsearch {'already running' if was_running else 'started'} at {url} (pid {node.pid()})")


@app.command()
def stop(name: NameOpt = "default", port: PortOpt = 9200) -> None:
    """Stop the node and wait for its JVM to exit. Succeeds when nothing runs."""
    node = elasticsearch_node(name=name, port=port)
    out.print("elasticsearch stopped" if node.stop() else "elasticsearch was not running")


@app.command()
def status(name: NameOpt = "default", port: PortOpt = 9200,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show whether the node runs and answers; exit 1 when it is not healthy."""
    info = elasticsearch_node(name=name, port=port).status()
    if as_json:
        out.print_json(json.dumps(info))
    else:
        state = "healthy" if info["healthy"] else ("running, not healthy" if info["running"] else "stopped")
        out.print(f"elasticsearch '{name}' {info['version']}: {state} at {info['url']} (pid {info['pid']})")
    if not info["healthy"]:
        raise typer.Exit(1)
