"""Verifying a pushed task's signature: `Celeriac-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">` with the task type's secret, within a 5-minute tolerance."""

import hashlib
import hmac
import time

import pytest

from celeriac import InvalidSignature, sign, verify_signature

SECRET = "a-secret-of-sixteen-plus"
BODY = b'{"id":"images-0193","task":"resize","args":{"w":2},"attempt":1}'


def test_a_genuine_signature_verifies():
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    verify_signature(SECRET, f"t={t},v1={mac}", BODY)
    verify_signature(SECRET, sign(SECRET, BODY), BODY)


@pytest.mark.parametrize(
    "header, body, why",
    [
        (None, BODY, "no Celeriac-Signature"),
        ("v1=abc", BODY, "malformed"),
        (sign("another-secret-entirely", BODY), BODY, "does not match"),
        (sign(SECRET, BODY), BODY + b" ", "does not match"),
        (sign(SECRET, BODY, timestamp=int(time.time()) - 301), BODY, "tolerance"),
    ],
)
def test_a_wrong_signature_is_rejected(header, body, why):
    with pytest.raises(InvalidSignature, match=why):
        verify_signature(SECRET, header, body)
