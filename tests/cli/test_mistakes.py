"""Issue 17: every mistake a newcomer made gets one clear line (what is wrong, what to do), a non-zero exit and no
traceback. Each test runs the real ``searchtune`` command as a subprocess; those that need a cluster use the
session's real Elasticsearch node."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer
from typer.testing import CliRunner



# ---------------------------------------------------------------- nodes and ports


def test_es_start_on_a_busy_port_says_so_before_starting(cli, one_error, busy_port: int, tmp_path: Path) -> None:
    env = {"SEARCHTUNE_NODES_DIR": str(tmp_path / "nodes")}
    result = cli("es", "start", "--name", "busy", "--port", str(busy_port), env=env)
    one_error(result, f"port {busy_port}", "already in use", "--port")
    assert not (tmp_path / "nodes" / "elasticsearch" / "busy" / "node.pid").exists()


def test_opensearch_start_next_to_a_transport_port(cli, one_error, busy_port: int, tmp_path: Path) -> None:
    """`opensearch start --port P` where P+100 is taken (an ES node's transport port in the issue)."""
    env = {"SEARCHTUNE_NODES_DIR": str(tmp_path / "nodes")}
    result = cli("opensearch", "start", "--name", "busy", "--port", str(busy_port - 100), env=env)
    one_error(result, f"port {busy_port}", "transport port", "--port + 100")


def test_quickstart_starts_its_node_on_searchtune_es_port(cli, one_error, busy_port: int, mini_dataset: Path,
                                                          tmp_path: Path) -> None:
    """The quickstart's own node goes where ``SEARCHTUNE_ES_PORT`` says (as ``searchtune es start``'s does), so it
    never reuses, and then stops, somebody's node on 9200: on a taken port it stops before starting anything."""
    env = {"SEARCHTUNE_NODES_DIR": str(tmp_path / "nodes"), "SEARCHTUNE_ES_PORT": str(busy_port),
           "SEARCHTUNE_ES_URL": ""}
    result = cli("quickstart", "--dataset", str(mini_dataset), "--workdir", str(tmp_path / "qs"), env=env)
    one_error(result, f"port {busy_port}", "already in use")
    bad = cli("quickstart", "--dataset", str(mini_dataset), "--workdir", str(tmp_path / "qs"),
              env={**env, "SEARCHTUNE_ES_PORT": "92OO"})
    one_error(bad, "SEARCHTUNE_ES_PORT must be a port number", "'92OO'")


def test_searchtune_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    """``searchtune ... --help | head``: the reader leaves early, the write fails with a broken pipe. That is a
    ``ConnectionError`` in Python, and was reported as "cannot reach a search cluster"."""
    import subprocess
    import sys

    shell = subprocess.run(["bash", "-c", f"{sys.executable} -m searchtune.cli quickstart --help | head -3"],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert "Usage" in shell.stdout
    assert "error" not in shell.stderr and "Traceback" not in shell.stderr, shell.stderr


def test_es_start_where_a_cluster_already_answers(cli, one_error, es_url: str, tmp_path: Path) -> None:
    port = es_url.rsplit(":", 1)[1]
    result = cli("es", "start", "--name", "other", "--port", port,
                     env={"SEARCHTUNE_NODES_DIR": str(tmp_path / "nodes")})
    one_error(result, f"port {port} already answers as a search cluster", f"--es-url {es_url}")


def test_serve_on_a_busy_port(cli, one_error, busy_port: int, base_model_path: str) -> None:
    result = cli("serve", "--model", base_model_path, "--port", str(busy_port), timeout=60)
    one_error(result, f"port {busy_port}", "already in use", "another --port")
    assert "Errno 98" not in result.stderr


# ---------------------------------------------------------------- eval


def test_eval_on_a_missing_index(cli, one_error, mini_dataset: Path, es_url: str, mini_index: str) -> None:
    result = cli("eval", str(mini_dataset), "--index", mini_index + "t", "--es-url", es_url)
    one_error(result, f"index '{mini_index}t' does not exist at {es_url}", "searchtune index")


def test_eval_on_another_datasets_index_warns_and_exits_2(cli, one_error, datasets_dir: Path, es_url: str, mini_index: str) -> None:
    result = cli("eval", str(datasets_dir / "cranfield"), "--index", mini_index, "--es-url", es_url)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 2, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"is in index '{mini_index}'" in warning[0], result.stderr
    assert "NDCG@10" in result.stdout  # the numbers are still shown


def test_eval_on_the_right_index_does_not_warn(cli, one_error, mini_dataset: Path, es_url: str, mini_index: str) -> None:
    result = cli("eval", str(mini_dataset), "--index", mini_index, "--es-url", es_url)
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr


def test_eval_rerank_with_a_mistyped_model_folder(cli, one_error, mini_dataset: Path, es_url: str, mini_index: str,
                                                  tmp_path: Path) -> None:
    (tmp_path / "models" / "scifact-embed").mkdir(parents=True)
    result = cli("eval", str(mini_dataset), "--index", mini_index, "--es-url", es_url, "--rerank",
                     "models/scifact-embd", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    one_error(result, "--rerank models/scifact-embd", "the path does not exist")
    assert "internet" not in result.stderr.lower() and "hub" not in result.stderr.lower()


def test_serve_with_a_missing_model_folder(cli, one_error, tmp_path: Path) -> None:
    result = cli("serve", "--model", "models/nope", cwd=tmp_path, env={"SEARCHTUNE_STORE": str(tmp_path / "s")})
    one_error(result, "--model models/nope", "the path does not exist")
    assert "invalid model name" not in result.stderr


def test_unreachable_cluster_names_the_url_and_the_fix(cli, one_error, mini_dataset: Path, dead_url: str, tmp_path: Path) -> None:
    result = cli("data", "mine-negatives", str(mini_dataset), "--index", "mini", "-o",
                     str(tmp_path / "t.jsonl"), "--es-url", dead_url)
    one_error(result, f"cannot reach a search cluster at {dead_url}", "searchtune es start")
    assert "NewConnectionError" not in result.stderr
    evaluated = cli("eval", str(mini_dataset), "--index", "mini", "--es-url", dead_url)
    one_error(evaluated, dead_url, "searchtune es start")


# ---------------------------------------------------------------- es connect


def test_es_connect_checks_capability_before_licence(cli, one_error, es_url: str) -> None:
    """The bundled test distribution has no inference API: say that, not 'start a trial' first."""
    result = cli("es", "connect", "--es-url", es_url, "--model-endpoint", "http://127.0.0.1:9/v1/rerank")
    line = one_error(result, "no inference API", "searchtune gateway")
    assert "start_trial" not in line


def test_es_connect_to_no_cluster(cli, one_error, dead_url: str) -> None:
    result = cli("es", "connect", "--es-url", dead_url, "--model-endpoint", "http://127.0.0.1:9/v1/rerank")
    one_error(result, f"cannot reach a cluster at {dead_url}", "searchtune es start")


# ---------------------------------------------------------------- data and splits


def test_missing_split_suggests_the_option(cli, one_error, datasets_dir: Path, tmp_path: Path) -> None:
    cran = str(datasets_dir / "cranfield")
    split = cli("data", "split", cran, str(tmp_path / "out"))
    one_error(split, "no split 'train' (available: test)", "pass --source-split test")
    train = cli("train", "embed", "--dataset", cran, "--index", "cranfield", "-o", str(tmp_path / "m"))
    one_error(train, "no split 'train'", "pass --split test")
    evaluated = cli("eval", cran, "--index", "cranfield", "--split", "dev")
    one_error(evaluated, "no split 'dev'", "pass --split test")


def test_stage_names_the_dataset_not_its_layout_folder(cli, one_error, mini_dataset: Path, tmp_path: Path) -> None:
    env = {"SEARCHTUNE_STORE": str(tmp_path / "store")}
    staged = cli("data", "stage", str(mini_dataset), env=env)
    assert staged.returncode == 0, staged.stderr
    assert "staged mini " in staged.stdout
    verified = cli("data", "verify", "mini", env=env)
    assert verified.returncode == 0, verified.stderr
    assert Path(verified.stdout.strip().splitlines()[-1], "corpus.jsonl").is_file()


def test_help_shows_the_real_store_no_bool_metavars_and_flow_order(cli, one_error, tmp_path: Path) -> None:
    store = str(tmp_path / "my-store")
    for command in (["data", "stage", "--help"], ["models", "list", "--help"]):
        shown = cli(*command, env={"SEARCHTUNE_STORE": store})
        assert store in shown.stdout and "~/.searchtune/store" not in shown.stdout, command
    top = cli("--help").stdout
    assert "<bool>" not in top and "<bool>" not in cli("eval", "--help").stdout
    listed = re.findall(r"^│ (\w+) ", top.split("Commands")[1], flags=re.M)
    assert listed == ["data", "train", "models", "serve", "index", "vectors", "gateway", "eval", "es", "opensearch",
                      "quickstart", "workbench"]


def test_messages_with_brackets_print_verbatim(cli, one_error, tmp_path: Path) -> None:
    """Text from files, logs and clusters is never read as rich markup (the MarkupError of the issue)."""
    result = cli("models", "show", "bad[/name]", env={"SEARCHTUNE_STORE": str(tmp_path / "s")})
    one_error(result, "invalid model name 'bad[/name]'")


# ---------------------------------------------------------------- the mechanism itself


def _app_raising(exc: Exception) -> typer.Typer:
    from searchtune.cli.main import SearchtuneGroup

    app = typer.Typer(cls=SearchtuneGroup)

    @app.callback()
    def main(debug: bool = typer.Option(False, "--debug")) -> None:
        from searchtune.cli.errors import DEBUG

        DEBUG["enabled"] = debug

    @app.command()
    def boom() -> None:
        raise exc

    return app


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(cli, one_error) -> None:
    app = _app_raising(KeyError("[red]x[/red]"))
    plain = CliRunner().invoke(app, ["boom"])
    assert plain.exit_code == 1 and "unexpected KeyError" in plain.output and "--debug" in plain.output
    assert "[red]x[/red]" in plain.output and plain.exception is None or isinstance(plain.exception, SystemExit)
    debug = CliRunner().invoke(app, ["--debug", "boom"])
    assert isinstance(debug.exception, KeyError)
    os.environ.pop("SEARCHTUNE_DEBUG", None)
