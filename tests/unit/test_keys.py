"""Record keys by the catalog's key rule, and message ids."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pipeline.domain.ids import (
    message_id_for_idempotency_key,
    message_id_for_offset,
    message_key,
    user_key,
)
from pipeline.exceptions import ValidationError
from pipeline.kafka import catalog as topics
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.io import key_for
from pipeline.settings import Settings


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(Settings.from_env({}).topics_file)


@pytest.mark.parametrize(
    ("topic", "name", "key"),
    [
        (topics.REQUESTS, "NotificationRequest", "acme:u-1"),
        (topics.STATUS, "NotificationStatus", "acme:m-1"),
        (topics.FLIGHT_EVENTS, "FlightEvent", "IB3456-2026-12-01"),
        (topics.PREFERENCES, "UserPreferences", "acme:u-1"),
    ],
)
def test_key_for(catalog: Catalog, sample: Any, topic: str, name: str, key: str) -> None:
    assert key_for(catalog[topic], sample(name)) == key


def test_key_for_missing_part(catalog: Catalog, sample: Any) -> None:
    with pytest.raises(ValidationError, match="messageId"):
        key_for(catalog[topics.STATUS], {**sample("NotificationStatus"), "messageId": None})


def test_ids() -> None:
    assert (user_key("acme", "u-1"), message_key("acme", "m-1")) == ("acme:u-1", "acme:m-1")
    first = message_id_for_idempotency_key("acme", "order-42")
    assert uuid.UUID(first).version == 5
    assert first == message_id_for_idempotency_key("acme", "order-42")
    assert first != message_id_for_idempotency_key("globex", "order-42")
    at = message_id_for_offset(topics.REQUESTS, 3, 100)
    assert at == message_id_for_offset(topics.REQUESTS, 3, 100)
    assert at != message_id_for_offset(topics.REQUESTS, 3, 101)
