"""Run ``searchtune gateway`` as a real subprocess (quickstart, tests, benchmarks) and stop it cleanly."""

from __future__ import annotations

from searchtune.subprocesses import ChildProcess, launch


class GatewayStartError(RuntimeError):
    pass


class GatewayHandle(ChildProcess):
    """The gateway child process (see :class:`searchtune.subprocesses.ChildProcess`)."""


def start_gateway_process(es_url: str, port: int = 0, host: str = "127.0.0.1", timeout_s: float | None = None,
                          extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                          startup_timeout: float = 60.0, admin_key: str | None = None) -> GatewayHandle:
    """Start ``searchtune gateway`` (port 0 = a free port) and wait until it answers health. ``admin_key`` is the
    key pipeline writes must present (``X-Searchtune-Admin-Key``); handed over in the environment, not argv, so
    ``ps`` does not show it."""
    args = ["gateway", "--es-url", es_url, "--host", host, "--port", str(port)]
    if timeout_s is not None:
        args += ["--timeout", str(timeout_s)]
    args += extra_args or []
    full_env = dict(env or {})
    if admin_key:
        full_env["SEARCHTUNE_GATEWAY_ADMIN_KEY"] = admin_key
    return launch(args, "gateway", "/_searchtune/health", env=full_env, startup_timeout=startup_timeout,
                  handle_cls=GatewayHandle, error_cls=GatewayStartError)
