"""Entry point of the ``searchtune`` command. Each stage registers its sub-app or command here, in flow order."""

from __future__ import annotations

from typing import Annotated

import typer

from searchtune import __version__
from searchtune.cli import data as data_cli
from searchtune.cli import es as es_cli
from searchtune.cli import opensearch as opensearch_cli
from searchtune.cli.common import setup_logging
from searchtune.cli.errors import DEBUG, ErrorReportingGroup


class SearchtuneGroup(ErrorReportingGroup):
    flow_order = ("data", "train", "models", "serve", "index", "vectors", "gateway", "eval", "es", "opensearch",
                  "quickstart", "workbench")

from searchtune.cli.eval import eval_command
from searchtune.cli.gateway import gateway_command
from searchtune.cli.index import index_command
from searchtune.cli.quickstart import quickstart_command
from searchtune.cli import models as models_cli
from searchtune.cli import vectors as vectors_cli
from searchtune.cli.serve import serve_command
from searchtune.cli.train import app as train_app
from searchtune.cli.workbench import workbench_command

app = typer.Typer(
    name="searchtune",
    help="Fine-tune rerankers and embedders on your relevance judgments, serve them, wire them into "
         "Elasticsearch/OpenSearch, and measure the gain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=SearchtuneGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"searchtune {__version__}")
        raise typer.Exit()


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging (library messages too).")]
         = False,
         debug: Annotated[bool, typer.Option("--debug", envvar="SEARCHTUNE_DEBUG",
                                             help="Show the full traceback of an error (and debug logging).")] = False,
         version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    DEBUG["enabled"] = debug
    setup_logging(verbose or debug)


# --- in flow order (listed by SearchtuneGroup.flow_order)
app.add_typer(data_cli.app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(models_cli.app, name="models")
app.command("serve")(serve_command)
app.command("index")(index_command)
app.add_typer(vectors_cli.app, name="vectors")
app.command("gateway")(gateway_command)
app.command("eval")(eval_command)
app.add_typer(es_cli.app, name="es")
app.add_typer(opensearch_cli.app, name="opensearch")
app.command("quickstart")(quickstart_command)
app.command("workbench")(workbench_command)
