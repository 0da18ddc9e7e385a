"""Signatures of the requests Celeriac pushes (a remote task's run, a completion webhook).

The header is `Celeriac-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the MAC taken with
the shared secret over `<t>.<body>` (the exact body bytes). A receiver recomputes it, compares
in constant time, and refuses a timestamp further than the tolerance (5 minutes) from its
clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Optional, Union

from .errors import InvalidSignature

SIGNATURE_HEADER = "Celeriac-Signature"
DEFAULT_TOLERANCE = 300


def _key(secret: Union[str, bytes]) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: Union[str, bytes], body: bytes, timestamp: Optional[int] = None) -> str:
    """The header value Celeriac sends with `body` (useful in tests of a receiver)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(_key(secret), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    secret: Union[str, bytes],
    header: Optional[str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> None:
    """Raises InvalidSignature unless `header` signs `body` with `secret` within `tolerance`."""
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature("malformed signature header (expected t=<seconds>,v1=<hex>)") from None
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise InvalidSignature("the signature's timestamp is outside the tolerance")
    expected = hmac.new(_key(secret), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise InvalidSignature("the signature does not match the body")
