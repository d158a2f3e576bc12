"""``searchtune models``: the model registry (register, list, show, promote, rollback, delete)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from searchtune.cli.common import fail, out
from searchtune.config import store_uri
from searchtune.registry import ModelRegistry, RegistryError

app = typer.Typer(help="Versioned model registry on the store (SEARCHTUNE_STORE): register, promote, roll back.",
                  no_args_is_help=True)

StoreOption = Annotated[str | None, typer.Option("--store", envvar="SEARCHTUNE_STORE",
                                                 help=f"fsspec URI of the store (now: {store_uri()}).")]


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
    """Every version: kind, base model, created, key metric (newest recorded eval, else dev) and aliases."""
    from searchtune.cli.model_tables import list_table

    registry = _registry(store)
    if as_json:
        out.print_json(json.dumps(registry.list()))
        return
    indexes = {name: registry.index(name) for name in registry.names()}
    if not indexes:
        out.print(f"no models in {registry.uri} (register one with `searchtune models register NAME FOLDER`)")
        return
    out.print(list_table(indexes))


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS.")],
         store: StoreOption = None,
         as_json: Annotated[bool, typer.Option("--json", help="Print the raw version record (card, metrics, files, "
                                                              "evaluations) as JSON.")] = False) -> None:
    """Summary of one version: kind, base, training, dev scores and recorded evaluations (--json: everything)."""
    from searchtune.cli.model_tables import show_table

    try:
        entry = _registry(store).show(ref)
    except RegistryError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(entry))
    else:
        out.print(show_table(entry))


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
