"""The partner signature (docs/INTEGRATIONS.md, "Partners"): a known vector, tampering, stale and future times."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from minsheng.notify.partner import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, signed_headers, verify

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
SECRET = "s3cret-s3cret-s3cret"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"incident_id":"A1"}'
    expected = hmac.new(SECRET.encode(), b"1795222800." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1795222800", body) == "sha256=" + expected
    # the example of docs/INTEGRATIONS.md
    doc = signature("example-secret-0123456789", "1795222800", b'{"incident_id":"JJ-1"}')
    assert doc == "sha256=765f96c720c3c41ea682c972b0b8b4c5a673b192700fc264dae26646e731e0b7"


def test_verify_accepts_a_good_signature_and_names_each_refusal() -> None:
    body = '{"text":"噪声扰民"}'.encode()
    h = signed_headers(SECRET, body, NOW)
    assert verify(SECRET, h, body, NOW) is None
    assert verify(SECRET, h, body, NOW + timedelta(seconds=299)) is None
    assert verify(SECRET, h, body + b" ", NOW) == "signature does not match"
    assert verify("another-secret-000000", h, body, NOW) == "signature does not match"
    assert verify(SECRET, h, body, NOW + timedelta(seconds=301)) == "timestamp outside the allowed window"
    assert verify(SECRET, h, body, NOW - timedelta(seconds=301)) == "timestamp outside the allowed window"
    assert verify(SECRET, {TIMESTAMP_HEADER: h[TIMESTAMP_HEADER]}, body, NOW) == "missing signature headers"
    assert verify(SECRET, {**h, TIMESTAMP_HEADER: "12ab"}, body, NOW) == "bad timestamp"
    assert verify(SECRET, {**h, SIGNATURE_HEADER: "sha256=é"}, body, NOW) == "signature does not match"
