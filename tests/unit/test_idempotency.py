"""The idempotency decision: a messageId is reserved by an accepted request with its
body's fingerprint; the same body again is a duplicate, another body a conflict."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.domain.idempotency import Seen, decide, fingerprint, reservation
from pipeline.http.models import NotificationRequest
from pipeline.kafka.codecs import AvroCodec

TTL = 3600.0


def test_an_http_body_and_the_record_it_becomes_have_one_fingerprint(
    codec: AvroCodec, make_request: Any
) -> None:
    body = NotificationRequest.model_validate(
        {"recipient": {"userId": "u-1", "email": "ana@example.com"},
         "template": "booking-confirmation", "data": make_request()["data"]}
    )  # fmt: skip
    record = body.to_record("acme", "m-1")
    decoded = codec.decode("NotificationRequest", codec.encode("NotificationRequest", record))
    assert fingerprint(record) == fingerprint(decoded) == fingerprint(make_request())


def test_the_id_and_tenant_are_not_the_body(make_request: Any) -> None:
    assert fingerprint(make_request()) == fingerprint(make_request(messageId="other"))
    assert fingerprint(make_request()) != fingerprint(make_request(priority="high"))
    assert fingerprint(make_request()) != fingerprint(make_request(recipient={"phone": "+34600"}))
    assert fingerprint(make_request(channels=["email", "sms"])) != fingerprint(
        make_request(channels=["sms", "email"])
    )


def test_no_reservation_is_new_and_an_expired_one_too() -> None:
    assert decide(None, body="a", now=100.0, ttl_s=TTL, position=[0, 1]) is Seen.NEW
    old = reservation([0, 1], "a", now=100.0)
    assert decide(old, body="b", now=100.0 + TTL + 1, ttl_s=TTL) is Seen.NEW


@pytest.mark.parametrize(
    ("body", "position", "seen"),
    [
        ("a", [0, 7], Seen.REPLAY),  # the reserving record itself, redelivered
        ("a", [0, 9], Seen.DUPLICATE),
        ("a", None, Seen.DUPLICATE),  # the door: no position
        ("b", [0, 9], Seen.CONFLICT),
        ("b", None, Seen.CONFLICT),
    ],
)
def test_a_reserved_id(body: str, position: list[int] | None, seen: Seen) -> None:
    held = reservation([0, 7], "a", now=100.0)
    assert decide(held, body=body, now=200.0, ttl_s=TTL, position=position) is seen


def test_a_reservation_from_before_fingerprints_counts_as_the_same_body() -> None:
    held = {"position": [0, 7], "at": 100.0}
    assert decide(held, body="b", now=200.0, ttl_s=TTL, position=[0, 9]) is Seen.DUPLICATE
