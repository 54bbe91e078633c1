"""Webhook receiving as a whole: the registry, and the round trip simulator -> signed
webhook -> verify_and_parse for every provider."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import ValidationError
from pipeline.http.webhooks import WEBHOOK_PROVIDERS, verify_and_parse
from pipeline.providers import (
    Message,
    SendGrid,
    Smtp,
    TwilioSms,
    TwilioWhatsApp,
    Vonage,
    WhatsAppCloud,
)
from pipeline.settings import Settings

from .simkit import receiver, simulator
from .webhookkit import ec_keys, valid

SETTINGS = Settings.from_env(webhook_secrets())


def test_unknown_provider_is_a_validation_error() -> None:
    assert set(WEBHOOK_PROVIDERS) == {"sendgrid", "twilio", "vonage", "whatsapp-cloud"}
    with pytest.raises(ValidationError):
        verify_and_parse("fcm", url="u", headers={}, body=b"", settings=SETTINGS)


# Round trip: the simulator signs and posts, the receiver verifies and parses.


def message(channel: str, to: str, message_id: str) -> Message:
    return Message(message_id, "acme", channel, to, "Gate B12", subject="Gate change")


async def test_round_trip_every_provider_webhook_verifies() -> None:
    async with receiver(SETTINGS) as rec:
        settings = SETTINGS.with_(
            sim_webhook_base_url=rec.url, public_base_url=rec.url, sim_webhook_delay_ms=10
        )
        async with simulator(settings, whatsapp_wrote=["+34600111222"]) as sim:
            s, session = sim.settings, sim.session
            await SendGrid(
                session,
                base_url=s.sendgrid_base_url,
                api_key=s.sendgrid_api_key,
                from_email=s.email_from,
            ).send(message("email", "ana@example.com", "m-sg"))
            await SendGrid(
                session,
                base_url=s.sendgrid_base_url,
                api_key=s.sendgrid_api_key,
                from_email=s.email_from,
            ).send(message("email", "ana@bounce.test", "m-bo"))
            twilio = {
                "base_url": s.twilio_base_url,
                "account_sid": s.twilio_account_sid,
                "auth_token": s.twilio_auth_token,
                "public_url": s.public_url,
            }
            sms = await TwilioSms(session, from_number=s.twilio_from, **twilio).send(
                message("sms", "+34600111222", "m-tw")
            )
            await TwilioWhatsApp(session, from_number=s.twilio_whatsapp_from, **twilio).send(
                message("whatsapp", "+34600111222", "m-tww")
            )
            vonage = await Vonage(
                session,
                base_url=s.vonage_base_url,
                api_key=s.vonage_api_key,
                api_secret=s.vonage_api_secret,
                from_=s.vonage_from,
                public_url=s.public_url,
            ).send(message("sms", "+447700900123", "m-vo"))
            wa = await WhatsAppCloud(
                session,
                base_url=s.whatsapp_base_url,
                token=s.whatsapp_token,
                phone_number_id=s.whatsapp_phone_number_id,
            ).send(message("whatsapp", "+34600111222", "m-wa"))

            def by_message() -> dict[str, list[str]]:
                seen: dict[str, list[str]] = {}
                for event in rec.events:
                    seen.setdefault(event["messageId"], []).append(event["event"])
                return seen

            expected = {
                "m-sg": ["DELIVERED", "OPENED"],
                "m-bo": ["BOUNCED"],
                "m-tw": ["DELIVERED"],
                "m-tww": ["DELIVERED"],
                "m-vo": ["DELIVERED"],
                "m-wa": ["DELIVERED"],
            }
            await rec.wait_until(lambda r: by_message() == expected)
        assert rec.refused == []
        valid(rec.events)
        assert all(e["tenant"] == "acme" for e in rec.events)
        [bounce] = [e for e in rec.events if e["event"] == "BOUNCED"]
        assert bounce["reason"] is not None and "5.1.1" in bounce["reason"]
        ids = {e["messageId"]: e["providerMessageId"] for e in rec.events}
        assert ids["m-tw"] == sms.provider_message_id
        assert ids["m-vo"] == vonage.provider_message_id
        assert ids["m-wa"] == wa.provider_message_id
        channels = {e["messageId"]: (e["provider"], e["channel"]) for e in rec.events}
        assert channels["m-tww"] == ("twilio-whatsapp", "whatsapp")


async def test_round_trip_with_mismatched_secrets_is_refused_and_the_simulator_carries_on() -> None:
    _, other_public = ec_keys()
    verify = SETTINGS.with_(sendgrid_webhook_public_key=other_public, whatsapp_app_secret="rotated")
    async with receiver(verify) as rec:
        settings = SETTINGS.with_(sim_webhook_base_url=rec.url, sim_webhook_delay_ms=0)
        async with simulator(settings, whatsapp_wrote=["+34600111222"]) as sim:
            s = sim.settings
            sendgrid = SendGrid(
                sim.session,
                base_url=s.sendgrid_base_url,
                api_key=s.sendgrid_api_key,
                from_email=s.email_from,
            )
            whatsapp = WhatsAppCloud(
                sim.session,
                base_url=s.whatsapp_base_url,
                token=s.whatsapp_token,
                phone_number_id=s.whatsapp_phone_number_id,
            )
            await sendgrid.send(message("email", "ana@example.com", "m-1"))
            await whatsapp.send(message("whatsapp", "+34600111222", "m-2"))
            await rec.wait_until(lambda r: len(r.refused) == 3)  # 1 SendGrid + 2 WhatsApp posts
            assert rec.events == []
            assert sorted(set(rec.refused)) == [
                ("sendgrid", "AuthError"),
                ("whatsapp-cloud", "AuthError"),
            ]
            await sendgrid.send(message("email", "ana@example.com", "m-3"))  # still serving
            assert len(sim.recorded("sendgrid")) == 2


async def test_webhook_to_nowhere_is_dropped_without_harm() -> None:
    settings = SETTINGS.with_(sim_webhook_base_url="http://127.0.0.1:9", sim_webhook_delay_ms=0)
    async with simulator(settings, whatsapp_wrote=["+34600111222"]) as sim:
        s = sim.settings
        adapter = WhatsAppCloud(
            sim.session,
            base_url=s.whatsapp_base_url,
            token=s.whatsapp_token,
            phone_number_id=s.whatsapp_phone_number_id,
        )
        await adapter.send(message("whatsapp", "+34600111222", "m-1"))
        tasks = list(sim.state.tasks)
        assert tasks
        async with asyncio.timeout(5):
            for task in tasks:
                await task  # finishes: the failed post was logged and dropped
        assert all(t.exception() is None for t in tasks)
        await adapter.send(message("whatsapp", "+34600111222", "m-2"))
        assert len(sim.recorded()) == 2


async def test_smtp_posts_no_webhook() -> None:
    async with receiver(SETTINGS) as rec:
        settings = SETTINGS.with_(sim_webhook_base_url=rec.url, sim_webhook_delay_ms=0)
        async with simulator(settings, smtp=True) as sim:
            relay = Smtp(host="127.0.0.1", port=sim.smtp_port, from_email="n@herald.test")
            await relay.send(message("email", "ana@example.com", "m-1"))
            assert sim.state.tasks == set() and len(sim.recorded("smtp")) == 1
