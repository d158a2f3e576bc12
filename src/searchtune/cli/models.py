"""``searchtune models``: the model registry (register, list, show, promote, rollback, delete)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from searchtune.cli.common import fail, out
from searchtune.registry import ModelRegistry, RegistryError

app = typer.Typer(help="Versioned model registry on the store (SEARCHTUNE_STORE): register, promote, roll back.",
                  no_args_is_help=True)

StoreOption = Annotated[str | None, typer.Option("--store", envvar="SEARCHTUNE_STORE",
                                                 help="fsspec URI of the store (default ~/.searchtune/store).")]


def _registry(store: str | None) -> ModelRegistry:
    return ModelRegistry(store)


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Model name, e.g. scifact-reranker.")],
    source: Annotated[str, typer.Argument(help="Model folder or fsspec URI (s3://..., oss://...).")],
    description: Annotated[str, typer.Option(help="Free text stored with the version.")] = "",
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Extra metric NAME=VALUE (repeatable).")] = None,
    store: StoreOption = None,
) -> None:
    """Copy a model into the store as a new immutable version (with training.json / metrics.json if present)."""
    metrics = {}
    for item in metric or []:
        key, sep, value = item.partition("=")
        try:
            metrics[key] = float(value)
        except ValueError:
            fail(f"--metric '{item}': expected NAME=NUMBER")
        if not sep:
            fail(f"--metric '{item}': expected NAME=NUMBER")
    try:
        version = _registry(store).register(name, source, metrics=metrics, description=description)
    except RegistryError as exc:
        fail(str(exc))
    out.print(f"registered [bold]{name}[/] version [bold]{version}[/]")


@app.command("list")
def list_models(store: StoreOption = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """All models with their versions and aliases."""
    rows = _registry(store).list()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="models")
    for col in ("name", "versions", "latest", "aliases"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], ",".join(map(str, row["versions"])), str(row["latest"]),
                      ", ".join(f"{a}->{v}" for a, v in sorted(row["aliases"].items())))
    out.print(table)


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS.")],
         store: StoreOption = None) -> None:
    """Training card, metrics, files and aliases of one version (JSON)."""
    try:
        entry = _registry(store).show(ref)
    except RegistryError as exc:
        fail(str(exc))
    out.print_json(json.dumps(entry))


@app.command("promote")
def promote(name: str, version: int,
            alias: Annotated[str, typer.Option(help="Alias to point at the version.")] = "prod",
            store: StoreOption = None) -> None:
    """Point an alias (default prod) at a version; servers following NAME@alias hot-swap to it."""
    try:
        _registry(store).promote(name, version, alias)
    except RegistryError as exc:
        fail(str(exc))
    out.print(f"{name}@{alias} -> version {version}")


@app.command("rollback")
def rollback(name: str, alias: Annotated[str, typer.Option(help="Alias to move back.")] = "prod",
             store: StoreOption = None) -> None:
    """Move an alias back to the version it pointed at before the last promote."""
    try:
        version = _registry(store).rollback(name, alias)
    except RegistryError as exc:
        fail(str(exc))
    out.print(f"{name}@{alias} -> version {version}")


@app.command("delete")
def delete(name: str, version: int, store: StoreOption = None) -> None:
    """Delete a version (refused while an alias points at it)."""
    try:
        _registry(store).delete(name, version)
    except RegistryError as exc:
        fail(str(exc))
    out.print(f"deleted {name} version {version}")
