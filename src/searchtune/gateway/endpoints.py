"""Where a pipeline may send queries, documents and headers: an allow-list of model endpoints.

Without it, whoever may write a pipeline chooses a host that receives every search's query and top documents (and
the headers), and whose scores set the ranking. Allowed by default: loopback only (``127.0.0.0/8``, ``::1``,
``localhost``), where ``searchtune serve`` usually runs. The operator adds hosts with ``--allow-endpoint`` /
``SEARCHTUNE_GATEWAY_ALLOW_ENDPOINTS``: a host name (``models.internal``), a wildcard (``*.aliyuncs.com``), an IP
network (``10.0.0.0/8``), optionally with a port (``models.internal:8080``) or a scheme (``https://api.example.com``,
then only that scheme). The endpoints of ``--model`` are the operator's own, so they are allowed too.

Names are matched as written, never resolved: ``localhost.evil.example`` is not ``localhost``, and a decimal or
octal IP spelling is not an IP here (it is simply not on the list). The rerank client follows no redirects, so an
allowed endpoint cannot forward a call elsewhere.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.0/8", "::1", "localhost")


@dataclass(frozen=True)
class _Rule:
    scheme: str | None
    host: str  # lower-case name or wildcard, or an IP network in text form
    port: int | None

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme and scheme != self.scheme:
            return False
        if self.port is not None and port != self.port:
            return False
        try:
            network = ipaddress.ip_network(self.host, strict=False)
        except ValueError:
            return fnmatch.fnmatchcase(host, self.host)
        try:
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False


def _parse_rule(text: str) -> _Rule:
    text = text.strip()
    scheme = None
    if "://" in text:
        parts = urlsplit(text)
        scheme, host, port = parts.scheme.lower(), (parts.hostname or ""), parts.port
    else:
        host, port = text, None
        if text.startswith("["):  # [::1]:8080
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else None
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = int(port_text)
    if not host:
        raise ValueError(f"allowed endpoint {text!r} names no host")
    return _Rule(scheme, host.lower(), port)


class EndpointPolicy:
    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.entries = tuple(LOOPBACK) + tuple(a.strip() for a in allowed if a and a.strip())
        try:
            self._rules = [_parse_rule(entry) for entry in self.entries]
        except ValueError as exc:
            raise ValueError(f"--allow-endpoint: {exc}") from None

    def allows(self, endpoint: str) -> bool:
        try:
            parts = urlsplit(endpoint)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host or parts.username or parts.password:
            return False
        port = port or (443 if scheme == "https" else 80)
        return any(rule.matches(scheme, host, port) for rule in self._rules)

    def why_refused(self, endpoint: str) -> str | None:
        """None when allowed, else a message for the 400 of a pipeline PUT."""
        if self.allows(endpoint):
            return None
        if urlsplit(endpoint).username or urlsplit(endpoint).password:
            return ("credentials in the endpoint URL are refused; send them as a header referencing the gateway's "
                    "environment, e.g. \"Authorization\": \"Bearer $SEARCHTUNE_SECRET_NAME\"")
        return (f"{endpoint} is not an allowed model endpoint (allowed: {', '.join(self.entries)}); the operator "
                "adds hosts with the gateway's --allow-endpoint")
