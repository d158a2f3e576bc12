"""``start``/``stop``/``status`` for a managed search node, shared by ``searchtune es`` and ``searchtune opensearch``
so both engines behave (and are documented) the same way."""


import json
from collections.abc import Callable
from typing import Annotated

import typer

from searchtune.cli.common import fail, out
from searchtune.cli.errors import require_free_port
from searchtune.nodes.java import JavaNotFoundError
from searchtune.nodes.node import ManagedNode, NodeError

NodeFactory = Callable[..., ManagedNode]


def add_node_commands(app: typer.Typer, product: str, factory: NodeFactory, default_port: int, port_env: str,
                      heap_env: str, start_help: str) -> None:
    """Register the three lifecycle commands of ``product`` on ``app``."""
    name_opt = Annotated[str, typer.Option("--name", help="Node name: each name has its own data folder and pid file.")]
    port_opt = Annotated[int, typer.Option("--port", envvar=port_env, help="HTTP port (transport uses port+100).")]

    def start(name: name_opt = "default", port: port_opt = default_port,
              heap: Annotated[str, typer.Option(envvar=heap_env, help="JVM heap, e.g. 512m or 2g.")] = "1g",
              timeout: Annotated[float, typer.Option(help="Seconds to wait for cluster health.")] = 180.0) -> None:
        node = factory(name=name, port=port, heap=heap)
        was_running = node.pid() is not None
        if not was_running:
            _require_free_ports(product, node)
        try:
            url = node.start(timeout=timeout)
        except (NodeError, JavaNotFoundError) as exc:
            lines = str(exc).strip().splitlines()
            fail(lines[0] + (f" (full log under {node.node_dir / 'logs'})" if len(lines) > 1 else ""))
        out.print(f"{product} {'already running' if was_running else 'started'} at {url} (pid {node.pid()})")

    def stop(name: name_opt = "default", port: port_opt = default_port) -> None:
        """Stop the node and wait for its JVM to exit. Succeeds when nothing runs."""
        node = factory(name=name, port=port)
        out.print(f"{product} '{name}' stopped" if node.stop() else f"{product} '{name}' was not running")

    def status(name: name_opt = "default", port: port_opt = default_port,
               as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
        """Show whether the node runs and answers; exit 1 when it is not healthy."""
        info = factory(name=name, port=port).status()
        if as_json:
            out.print_json(json.dumps(info))
        else:
            state = "healthy" if info["healthy"] else ("running, not healthy" if info["running"] else "stopped")
            out.print(f"{product} '{name}' {info['version']}: {state} at {info['url']} (pid {info['pid']})")
        if not info["healthy"]:
            raise typer.Exit(1)

    start.__doc__ = start_help
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("status")(status)


def _require_free_ports(product: str, node: ManagedNode) -> None:
    """Both ports the node binds (HTTP and transport = HTTP + 100) must be free: a taken one otherwise ends in a
    BindHttpException buried in the node's log, or a start that waits out its whole timeout."""
    name, port = node.name, node.port
    if node.healthy():
        fail(f"port {port} already answers as a search cluster that `{product} start --name {name}` did not start: "
             f"use it with --es-url {node.url}, or choose another --port")
    hint = (f"stop what listens there, or start '{name}' with another --port (the {product} node binds the port "
            "and port+100)")
    require_free_port(port, f"HTTP port of {product} '{name}'", hint)
    require_free_port(port + 100, f"transport port of {product} '{name}', --port + 100", hint)
