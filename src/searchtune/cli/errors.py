"""One way every ``searchtune`` command reports a mistake: one line on stderr (what is wrong, what to do), a non-zero
exit, and no traceback unless ``--debug``.

Why one mechanism: commands used to print whatever an exception said (``NewConnectionError(<urllib3...>)``, 36-line
Elasticsearch tracebacks, rich ``MarkupError`` when a message held ``[brackets]``). Here, the top-level command group
catches anything a subcommand raises, turns the exceptions users cause (unreachable cluster, missing index, busy
port, bad dataset, unknown model) into one sentence with the next step, and prints every message escaped, so text
from files, logs and clusters is never read as rich markup.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import NoReturn

import typer
import typer._click as click
from rich.markup import escape
from typer.core import TyperGroup

from searchtune.subprocesses import port_in_use

#: Set by the global ``--debug`` option (or ``SEARCHTUNE_DEBUG=1``): re-raise so the traceback is shown.
DEBUG = {"enabled": os.environ.get("SEARCHTUNE_DEBUG", "") not in ("", "0", "false")}

START_HINT = "start a local node with `searchtune es start`, or point --es-url at a running cluster"


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do (printed as is, escaped)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def print_error(message: str) -> None:
    """The one error line, on stderr; ``message`` is escaped so brackets from files or logs print verbatim."""
    from searchtune.cli.common import console

    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def print_warning(message: str) -> None:
    from searchtune.cli.common import console

    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


def exit_with(message: str, code: int = 1) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


# ---------------------------------------------------------------- cluster errors


def _is_connection_error(exc: BaseException) -> bool:
    import httpx

    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"ConnectionError", "ConnectionTimeout", "NewConnectionError", "ConnectionRefusedError",
                "MaxRetryError"}:
        return True
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError))


def _api_error_type(exc: BaseException) -> str:
    """The cluster's error type (``index_not_found_exception``...) of an elasticsearch-py / opensearch-py error."""
    for attr in ("error", "message"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value.endswith("_exception"):
            return value
    info = getattr(exc, "body", None) or getattr(exc, "info", None)
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            return str(error.get("type", ""))
    return str(exc)


def cluster_message(exc: BaseException, url: str, index: str | None = None) -> str | None:
    """A one-line explanation of a search-cluster failure, or ``None`` when ``exc`` is not one."""
    if _is_connection_error(exc):
        return f"cannot reach a search cluster at {url} (connection refused or timed out): {START_HINT}"
    kind = _api_error_type(exc)
    if "index_not_found" in kind:
        name = f"'{index}' " if index else ""
        return (f"index {name}does not exist at {url}: create it with `searchtune index DATASET --index "
                f"{index or 'NAME'}`, or check the name (GET {url}/_cat/indices lists them)")
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if isinstance(status, int) and status in (401, 403):
        return f"the cluster at {url} refused the request (HTTP {status}): check the credentials in --es-url"
    return None


def raise_cluster_error(exc: BaseException, url: str, index: str | None = None, doing: str = "") -> NoReturn:
    """Exit with the cluster message for ``exc`` (or its first line, prefixed with what we were doing)."""
    message = cluster_message(exc, url, index)
    if message is None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"{doing + ' ' if doing else ''}at {url} failed: {first}"
    exit_with(message)


# ---------------------------------------------------------------- ports


def require_free_port(port: int, what: str, hint: str, host: str = "127.0.0.1") -> None:
    """Exit with one line when ``port`` is taken, before anything slow starts."""
    if port_in_use(port, host):
        exit_with(f"port {port} on {host} ({what}) is already in use by another program: {hint}")


# ---------------------------------------------------------------- the catch-all


def _known_message(exc: BaseException, args: list[str]) -> str | None:
    from searchtune.data.records import DatasetError
    from searchtune.registry import RegistryError

    if isinstance(exc, (UserError, DatasetError, RegistryError)):
        return str(exc)
    url = _target_url(args)
    message = cluster_message(exc, url)
    if message:
        return message
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"address already in use ({exc.strerror}): choose another --port"
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not valid UTF-8 ({exc.reason} at byte {exc.start}): re-encode it as UTF-8"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file or folder"
    return None


def _target_url(args: list[str]) -> str:
    """The cluster URL a command line targets (``--es-url``/``--os-url`` or the environment), for messages."""
    from searchtune.config import es_url

    for flag in ("--es-url", "--os-url"):
        for i, arg in enumerate(args):
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    if args and args[0] == "opensearch":
        return os.environ.get("SEARCHTUNE_OS_URL", "http://127.0.0.1:9400")
    return es_url()


def _hide_flag_metavars(command: click.Command) -> None:
    """Typer prints ``<bool>`` after every flag (``--strict <bool>``), which reads as if the flag took a value.
    An empty metavar shows the flag (and its ``--no-`` form) alone; done once for every command of the tree,
    including the lazily created ``--help`` option."""
    help_option = command.get_help_option(click.Context(command))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_metavars(sub)


class ErrorReportingGroup(TyperGroup):
    """The root command group: lists commands in ``flow_order`` and turns any
    exception a subcommand raises into one error line (``--debug`` shows the traceback instead)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _hide_flag_metavars(self)

    #: Command names in the order ``--help`` lists them (the order of the flow); others follow as added.
    flow_order: tuple[str, ...] = ()

    def get_params(self, ctx: click.Context) -> list:
        params = super().get_params(ctx)  # typer adds the completion flags after __init__
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def list_commands(self, ctx: click.Context) -> list[str]:
        rank = {name: i for i, name in enumerate(self.flow_order)}
        return sorted(self.commands, key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx: click.Context):
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130)
        except BrokenPipeError:
            # `searchtune ... | head`: the reader left; say nothing (a BrokenPipeError is a ConnectionError, and was
            # reported as "cannot reach a search cluster"). Further writes go nowhere, as Python's docs advise.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None  # 128 + SIGPIPE, what a shell reports for a killed writer
        except Exception as exc:  # noqa: BLE001 - the single place where unexpected errors become one line
            if DEBUG["enabled"]:
                raise
            message = _known_message(exc, args)
            if message is None:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                message = (f"unexpected {type(exc).__name__}{': ' + first if first else ''} "
                           "(rerun with --debug for the traceback, and please report it)")
            print_error(message)
            raise typer.Exit(getattr(exc, "code", 1) if isinstance(exc, UserError) else 1)
