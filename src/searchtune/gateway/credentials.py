"""The gateway's own cluster credentials: taken out of ``--es-url`` (or ``--es-api-key``), used only where the
gateway acts for itself, and never printed.

``http://elastic:Pa55word@es:9200`` used as is would make every request carry the password (an HTTP client applies
URL credentials to each call) and show it wherever the URL is shown. So the user-info is split off at start-up:
the URL the gateway keeps, logs and reports has none, and the credentials become an ``Authorization`` header that
is added to the gateway's own calls (the pipeline store) and to a client's request only when the client sent none
**and** the operator asked for it (``--lend-credentials``). Anonymous clients otherwise reach the cluster as
anonymous, and the cluster's security decides.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit


@dataclass(frozen=True)
class UpstreamCredentials:
    authorization: str | None = None  # "Basic ..." or "ApiKey ..."; never logged

    def __repr__(self) -> str:  # dataclass repr would print the header
        return f"UpstreamCredentials({'set' if self.authorization else 'none'})"


def split_credentials(es_url: str, api_key: str | None = None) -> tuple[str, UpstreamCredentials]:
    """(URL without user-info, the credentials it or ``api_key`` held). An API key wins over URL credentials."""
    parts = urlsplit(es_url)
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    if api_key:
        authorization = "ApiKey " + api_key.strip()
    return clean, UpstreamCredentials(authorization)


def redact_url(url: str) -> str:
    """``url`` fit to show: user-info (``user:pass@``) replaced by ``***@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
