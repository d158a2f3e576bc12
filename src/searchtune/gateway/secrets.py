"""Which secrets a pipeline may use, and how they reach the model endpoint without ever being stored or shown.

A pipeline's header values may reference environment variables (``Bearer $SEARCHTUNE_SECRET_BAILIAN``), expanded
from the **gateway's** environment at each call. Only variables whose names start with an allow-listed prefix
(default ``SEARCHTUNE_SECRET_``, ``--secret-prefix`` to change) may be referenced: anyone allowed to write a
pipeline could otherwise read any variable of the gateway (``${HOME}``, a cloud key) by pointing a pipeline at a
listener of theirs. A reference to another variable is refused when the pipeline is written (400 naming the header)
and expands to nothing if one was put on the cluster around the gateway.

Literal credentials are refused, not stored: a header whose name looks like a credential (``Authorization``,
``*key*``, ``*token*``, ``*secret*``, ``cookie``, ``password``) must hold a reference, so the pipelines index never
holds a secret in clear. Other literal values (``X-Team: search``) are allowed but shown as ``<redacted>`` by the
pipeline API, since the gateway cannot tell what a header means to a vendor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

DEFAULT_SECRET_PREFIX = "SEARCHTUNE_SECRET_"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|cookie|password|credential", re.IGNORECASE)
_SCHEME_ONLY = re.compile(r"(?i)(bearer|basic|apikey|token)")
REDACTED = "<redacted>"


class SecretPolicy:
    """The allow-listed variable-name prefixes (the gateway sets one per process with :func:`configure`)."""

    def __init__(self, prefixes: tuple[str, ...] = (DEFAULT_SECRET_PREFIX,)) -> None:
        cleaned = tuple(p.strip() for p in prefixes if p and p.strip())
        if not cleaned:
            raise ValueError("at least one secret variable prefix is needed")
        self.prefixes = cleaned

    def allows(self, variable: str) -> bool:
        return variable.startswith(self.prefixes)

    def problems(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """(header name, why) for every header a pipeline may not hold."""
        found = []
        for name, value in headers.items():
            names = [m.group(1) or m.group(2) for m in ENV_REF.finditer(value)]
            refused = [n for n in names if not self.allows(n)]
            if refused:
                found.append((name, f"references ${refused[0]}, but only environment variables starting with "
                                    f"{' or '.join(self.prefixes)} may be used (the gateway's --secret-prefix)"))
            elif _CREDENTIAL_HEADER.search(name) and value.strip() and not _is_scheme_and_refs(value):
                found.append((name, f"holds a literal credential; put it in the gateway's environment as "
                                    f"{self.prefixes[0]}<NAME> and write \"Bearer ${self.prefixes[0]}<NAME>\" "
                                    f"(the gateway does not store secrets)"))
        return found

    def expand(self, value: str, environ: Mapping[str, str] | None = None) -> str:
        """``value`` with allowed references expanded; any other reference expands to nothing."""
        env = os.environ if environ is None else environ
        return ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), "")
                           if self.allows(m.group(1) or m.group(2)) else "", value).strip()


_current = SecretPolicy()


def configure(prefixes: tuple[str, ...]) -> None:
    """Set this process's policy (the gateway does it once at start-up, from ``--secret-prefix``)."""
    global _current
    _current = SecretPolicy(prefixes)


def current() -> SecretPolicy:
    return _current


def resolve(headers: Mapping[str, str], environ: Mapping[str, str] | None = None,
            policy: SecretPolicy | None = None) -> dict[str, str]:
    """Headers to send: references expanded at call time; a header left empty (or holding only an auth scheme such
    as ``Bearer``) is dropped, so a guide's ``Bearer $KEY`` works against a local server that needs no key."""
    policy = policy or _current
    resolved: dict[str, str] = {}
    for name, value in headers.items():
        expanded = policy.expand(value, environ)
        if expanded and not _SCHEME_ONLY.fullmatch(expanded):
            resolved[name] = expanded
    return resolved


def redact_headers(headers: Mapping[str, object]) -> dict[str, object]:
    """Headers fit to show: references as written (they name a variable, not a secret), every literal hidden."""
    return {k: v if isinstance(v, str) and _is_scheme_and_refs(v) else REDACTED for k, v in headers.items()}


def _is_scheme_and_refs(value: str) -> bool:
    """Only references, optionally after an auth scheme (``Bearer $X``): nothing secret written out."""
    rest = ENV_REF.sub("", value).strip()
    return bool(ENV_REF.search(value)) and (not rest or bool(_SCHEME_ONLY.fullmatch(rest)))
