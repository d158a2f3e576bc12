"""Who may change pipelines: writes and deletes of ``/_search/pipeline/{name}`` and
``/_searchtune/default_pipeline/{index}`` need rights, because a pipeline decides where every matching search's
query and documents go and whose scores rank them.

Two modes (``--pipeline-auth``):

* ``admin-key`` (default): the caller presents the gateway's admin key in ``X-Searchtune-Admin-Key``. The gateway
  holds only its sha256 digest (``--admin-key`` is hashed at start-up, ``--admin-key-hash`` gives the digest) and
  compares in constant time (searchtune.keys, the rule the model server's keys follow). The store is then written
  with the gateway's own credentials. Without a configured key, pipeline writes are refused: nobody can change
  pipelines by accident of an open port. The key header is never forwarded to the cluster.
* ``cluster``: the write is made with the caller's own ``Authorization``, so the cluster's security (index
  privileges on the pipelines index) decides; a caller without credentials is refused before anything is written.
  Only sensible on a cluster with security enabled.

Reads (``GET``) stay open: definitions hold no secrets (secrets.py) and are shown redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse

from searchtune.keys import key_matches

ADMIN_KEY_HEADER = "x-searchtune-admin-key"
MODES = ("admin-key", "cluster")


def _refuse(status: int, reason: str) -> JSONResponse:
    cause = {"type": "security_exception", "reason": reason}
    headers = {"X-elastic-product": "Elasticsearch"}
    if status == 401:
        headers["WWW-Authenticate"] = 'ApiKey realm="searchtune-gateway"'
    return JSONResponse({"error": {"root_cause": [cause], **cause}, "status": status}, status_code=status,
                        headers=headers)


@dataclass(frozen=True)
class PipelineAuth:
    mode: str = "admin-key"
    key_hashes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--pipeline-auth must be one of {', '.join(MODES)}, got {self.mode!r}")

    @property
    def delegates(self) -> bool:
        """Are store writes made with the caller's credentials (``cluster`` mode)?"""
        return self.mode == "cluster"

    def refusal(self, request: Request) -> JSONResponse | None:
        """None when ``request`` may write pipelines, else the 401/403 to answer."""
        what = f"{request.method} {request.url.path}"
        if self.mode == "cluster":
            if request.headers.get("authorization"):
                return None
            return _refuse(401, f"{what} needs the caller's cluster credentials (Authorization): the gateway "
                                "runs with --pipeline-auth cluster")
        if not self.key_hashes:
            return _refuse(403, f"{what} is disabled: no admin key is configured (start the gateway with "
                                "--admin-key, SEARCHTUNE_GATEWAY_ADMIN_KEY or --admin-key-hash)")
        presented = request.headers.get(ADMIN_KEY_HEADER, "").strip()
        if not presented:
            return _refuse(401, f"{what} needs the gateway's admin key in the X-Searchtune-Admin-Key header")
        if not key_matches(presented, self.key_hashes):
            return _refuse(403, f"{what}: invalid admin key")
        return None
