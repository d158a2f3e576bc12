"""API keys kept only as sha256 digests and checked in constant time: shared by the model server's bearer keys
and the gateway's admin key, so both follow one rule.

A digest, not the key, is what a process holds (a memory dump or a config file shows no usable key), and
:func:`key_matches` compares the presented key's digest with every stored one through :func:`hmac.compare_digest`
without stopping at a match, so the time taken does not tell which key (or how much of it) was right.
"""

from __future__ import annotations

import hashlib
import hmac


def hash_key(key: str) -> str:
    """The hex sha256 digest under which a key is kept."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key_hashes(keys: list[str] | None = None, hashes: list[str] | None = None) -> list[str]:
    """Raw keys are hashed at once; ``sha256:<hex>`` or bare 64-hex digests are taken as already hashed."""
    out = [hash_key(k) for k in (keys or []) if k]
    for h in hashes or []:
        h = h.strip().removeprefix("sha256:").lower()
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError("an API key hash must be 64 hex characters (sha256), optionally prefixed 'sha256:'")
        out.append(h)
    return out


def key_matches(presented: str, key_hashes: list[str]) -> bool:
    """Does ``presented`` hash to one of ``key_hashes``? Constant time: every digest is compared, no early exit."""
    digest = hashlib.sha256(presented.encode()).digest()
    ok = False
    for stored in key_hashes:
        ok |= hmac.compare_digest(digest, bytes.fromhex(stored))
    return ok
