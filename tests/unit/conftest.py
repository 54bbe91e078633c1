"""Shared fixtures for the unit tests: the shipped schemas, templates and sample records."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.domain.templates import TemplateCatalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import Settings

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
AT = "2026-11-28T10:00:00.000Z"
CONSENT_NO = {"granted": False, "source": "unsubscribe-link", "at": AT}
CONSENT_YES = {"granted": True, "source": "signup", "at": AT}
BOOKING = {
    "name": "Ana",
    "bookingRef": "X7K2LQ",
    "flight": "IB3456",
    "date": "2026-12-01",
    "origin": "MAD",
    "destination": "BCN",
}

# One realistic record per schema; optional fields are partly left out so that
# a round trip also exercises the schema defaults. Nested records are complete.
SAMPLES: dict[str, dict[str, Any]] = {
    "AuditRecord": {
        "tenant": "acme",
        "userId": "u-1",
        "messageId": "m-1",
        "decision": "BLOCKED",
        "rule": "opted-out-channel:email",
        "category": "marketing",
        "at": AT,
    },
    "ChannelDispatch": {
        "messageId": "m-1",
        "tenant": "acme",
        "userId": "u-1",
        "channel": "email",
        "to": "ana@example.com",
        "priority": "standard",
        "template": "booking-confirmation",
        "locale": "es",
        "subject": "Reserva X7K2LQ confirmada",
        "text": "Hola Ana",
        "html": "<p>Hola Ana</p>",
        "remainingChannels": ["sms"],
        "request": b"\xc3\x01original-bytes",
        "history": [
            {
                "channel": "whatsapp",
                "provider": "whatsapp-cloud",
                "outcome": "unreachable",
                "error": "131026",
                "at": "2026-11-28T10:00:00.000Z",
            }
        ],
        "retryCounts": {"timeout": 1},
    },
    "ScheduledDelivery": {
        "id": "s-1",
        "op": "SCHEDULE",
        "dueAt": 1764324000000,
        "topic": "herald.dispatch.email.urgent",
        "key": "acme:u-1",
        "payload": b"\xc3\x01dispatch-bytes",
    },
    "DeadLetter": {
        "topic": "herald.notifications.requests",
        "partition": 3,
        "offset": 2**40,
        "key": b"acme:u-1",
        "value": b"\x00garbage",
        "stage": "ingest",
        "reason": "decode-error",
        "error": "not Avro single-object encoded",
        "attempts": [
            {
                "channel": "email",
                "provider": "sendgrid",
                "outcome": "transient",
                "error": "500",
                "at": AT,
            },
        ],
        "at": AT,
    },
    "FlightEvent": {
        "eventId": "ev-1",
        "tenant": "acme",
        "flightKey": "IB3456-2026-12-01",
        "flight": "IB3456",
        "type": "GATE_CHANGE",
        "data": {"oldGate": "B12", "newGate": "C3"},
        "at": AT,
    },
    "FlightSubscription": {
        "tenant": "acme",
        "flightKey": "IB3456-2026-12-01",
        "userId": "u-1",
        "name": "Ana",
        "at": AT,
    },
    "NotificationRequest": {
        "messageId": "m-1",
        "tenant": "acme",
        "recipient": {
            "userId": "u-1",
            "email": "ana@example.com",
            "phone": "+34600111222",
            "whatsapp": None,
            "pushTokens": ["tok-1"],
            "locale": "es-ES",
            "timezone": "Europe/Madrid",
        },
        "template": "booking-confirmation",
        "data": {"name": "Ana", "seats": 2, "price": 99.5, "vip": True, "note": None},
        "priority": "high",
        "channels": ["email", "sms"],
        "metadata": {"source": "booking"},
    },
    "NotificationStatus": {
        "messageId": "m-1",
        "tenant": "acme",
        "userId": "u-1",
        "status": "SENT",
        "at": AT,
        "channel": "email",
        "provider": "sendgrid",
        "attempt": 1,
        "providerMessageId": "sg-123",
    },
    "ProviderEvent": {
        "provider": "sendgrid",
        "channel": "email",
        "providerMessageId": "sg-123",
        "eventId": "evt-9",
        "tenant": "acme",
        "messageId": "m-1",
        "event": "DELIVERED",
        "at": AT,
    },
    "UserPreferences": {
        "tenant": "acme",
        "userId": "u-1",
        "channels": {"email": CONSENT_YES, "sms": CONSENT_NO},
        "categories": {"marketing": CONSENT_NO},
        "updatedAt": AT,
    },
    "TemplateDocument": {
        "tenant": "acme",
        "templateId": "welcome",
        "version": 2,
        "document": '{"priority": "standard", "variables": ["name"], '
        '"locales": {"en": {"sms": {"text": "Hi {{ name }}"}}}}',
        "updatedAt": AT,
    },
    "UserProfile": {
        "tenant": "acme",
        "userId": "u-1",
        "email": "ana@example.com",
        "pushTokens": ["tok-1"],
        "locale": "es",
        "attributes": {"tier": "gold"},
        "updatedAt": AT,
    },
    "WhatsAppServiceWindow": {
        "phoneNumberId": "100000000000001",
        "number": "34600111222",
        "lastInboundAt": 1764324000000,
        "providerMessageId": "wamid.in-1",
    },
}


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env({})


@pytest.fixture(scope="session")
def schemas(settings: Settings) -> SchemaSet:
    return SchemaSet.from_dir(settings.schemas_dir)


@pytest.fixture
def codec(schemas: SchemaSet) -> AvroCodec:
    # A fresh SchemaSet per test: `add_writer` mutates it.
    return AvroCodec(SchemaSet(schemas.by_name))


@pytest.fixture(scope="session")
def shipped(settings: Settings) -> TemplateCatalog:
    return TemplateCatalog.from_dir(settings.templates_dir)


@pytest.fixture
def templates(shipped: TemplateCatalog) -> TemplateCatalog:
    """The shipped templates in a catalog of the test's own (a tenant's saved ones stay in it)."""
    return TemplateCatalog(shipped.templates.values())


@pytest.fixture
def sample() -> Any:
    """`sample(name)`: a fresh deep copy of the sample record of schema `name`."""
    return lambda name: copy.deepcopy(SAMPLES[name])


@pytest.fixture(scope="session")
def booking() -> dict[str, Any]:
    """Data with every variable of the shipped `booking-confirmation` template."""
    return dict(BOOKING)


@pytest.fixture(scope="session")
def now() -> datetime:
    return NOW


@pytest.fixture
def make_request() -> Any:
    """`make_request(**changes)`: a valid NotificationRequest record (as normalized), changed."""
    return _make_request


def _make_request(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": "m-1",
        "tenant": "acme",
        "recipient": {
            "userId": "u-1",
            "email": "ana@example.com",
            "phone": None,
            "whatsapp": None,
            "pushTokens": None,
            "locale": None,
            "timezone": None,
        },
        "template": "booking-confirmation",
        "data": dict(BOOKING),
        "priority": "standard",
        "channels": None,
        "mode": None,
        "sendAt": None,
        "webhookUrl": None,
        "metadata": {},
    }
    recipient = changes.pop("recipient", None)
    if recipient is not None:
        record["recipient"] = {**record["recipient"], **recipient}
    record.update(changes)
    return record
