"""The SMTP adapter against the simulator's aiosmtpd sink."""

from __future__ import annotations

import pytest

from pipeline.exceptions import (
    ProviderAuthError,
    ProviderTimeout,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers import Smtp
from pipeline.settings import Settings

from .adapterkit import expect, msg, smtp_relay
from .simkit import simulator

# SMTP against the aiosmtpd sink.


async def test_smtp_sends_a_mime_message_with_the_herald_headers() -> None:
    async with simulator(smtp=True) as sim:
        message = msg(
            "email",
            "ana@example.com",
            subject="Reserva ABC123",
            html="<p>Hola</p>",
            text="Hola Ana",
            message_id="m-s",
            headers={"List-Unsubscribe": "<https://u>"},
        )
        accepted = await smtp_relay(sim).send(message)
        [sent] = sim.recorded("smtp")
        assert sent["channel"] == "email" and sent["to"] == "ana@example.com"
        assert sent["providerMessageId"] == accepted.provider_message_id
        assert (
            accepted.provider_message_id.startswith("<")
            and "@herald.test>" in accepted.provider_message_id
        )
        content = sent["content"]
        assert content["subject"] == "Reserva ABC123" and content["text"].strip() == "Hola Ana"
        assert content["html"].strip() == "<p>Hola</p>"
        assert content["headers"]["X-Herald-Message-Id"] == "m-s" == content["messageId"]
        assert content["headers"]["X-Herald-Tenant"] == "acme"
        assert content["headers"]["List-Unsubscribe"] == "<https://u>"
        assert content["headers"]["Message-ID"] == accepted.provider_message_id
        assert content["from"] == "Herald <notifications@herald.test>"


async def test_smtp_recipient_conventions() -> None:
    async with simulator(smtp=True) as sim:
        relay = smtp_relay(sim)
        await expect(RecipientUnreachable, relay.send(msg("email", "ana@bounce.test")), "550")
        await expect(RecipientUnreachable, relay.send(msg("email", "ana@invalid.test")), "553")
        assert sim.recorded() == []


@pytest.mark.parametrize(
    ("fail", "code"), [("5xx", "451"), ("429", "452"), ("down", "421"), ("timeout", "timeout")]
)
async def test_smtp_faults(fail: str, code: str) -> None:
    async with simulator(smtp=True) as sim:
        await sim.fault("smtp", fail=fail, times=1)
        kind = ProviderTimeout if fail == "timeout" else TransientError
        await expect(kind, smtp_relay(sim, timeout=0.5).send(msg("email", "a@example.com")), code)
        await smtp_relay(sim).send(msg("email", "a@example.com"))
        assert len(sim.recorded("smtp")) == 1


async def test_smtp_relay_down_is_transient() -> None:
    relay = Smtp(host="127.0.0.1", port=9, from_email="n@herald.test", timeout=2)
    await expect(ProviderTimeout, relay.send(msg("email", "a@example.com")), "network")


async def test_smtp_auth() -> None:
    settings = Settings(smtp_username="herald", smtp_password="s3cret", sim_webhook_delay_ms=0)
    async with simulator(settings, smtp=True) as sim:
        await smtp_relay(sim, username="herald", password="s3cret").send(
            msg("email", "a@example.com")
        )
        await expect(
            ProviderAuthError,
            smtp_relay(sim, username="herald", password="no").send(msg("email", "a@example.com")),
            "535",
        )
        await expect(ProviderAuthError, smtp_relay(sim).send(msg("email", "a@example.com")), "530")
        assert len(sim.recorded("smtp")) == 1
