"""What the adapter tests share: messages, the error shorthands, adapters pointed at a Sim."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers import (
    Fcm,
    Message,
    Smtp,
    StaticToken,
    TwilioSms,
    TwilioWhatsApp,
    Vonage,
    WhatsAppCloud,
)

from .simkit import Sim

T, U, BAD, A = TransientError, RecipientUnreachable, InvalidData, ProviderAuthError
R, TO = RateLimited, ProviderTimeout  # the retry policy's rate-limit and timeout classes


def msg(channel: str, to: str, **kw: Any) -> Message:
    return Message(
        message_id=kw.pop("message_id", "msg-1"),
        tenant=kw.pop("tenant", "acme"),
        channel=channel,
        to=to,
        text=kw.pop("text", "Your flight IB123 departs at 10:40"),
        **kw,
    )


async def expect(error: type[DeliveryError], call: Any, code: str | None = None) -> DeliveryError:
    with pytest.raises(error) as caught:
        await call
    assert type(caught.value) is error, repr(caught.value)
    if code is not None:
        assert caught.value.code == code, repr(caught.value)
    return caught.value


def _twilio_args(sim: Sim, from_number: str, **kw: Any) -> dict[str, Any]:
    s = sim.settings
    return {"base_url": s.twilio_base_url, "account_sid": s.twilio_account_sid,
            "auth_token": s.twilio_auth_token, "from_number": from_number,
            "public_url": "https://herald.example.com", **kw}  # fmt: skip


def twilio_sms(sim: Sim, **kw: Any) -> TwilioSms:
    return TwilioSms(sim.session, **_twilio_args(sim, sim.settings.twilio_from, **kw))


def twilio_whatsapp(sim: Sim, **kw: Any) -> TwilioWhatsApp:
    return TwilioWhatsApp(sim.session, **_twilio_args(sim, sim.settings.twilio_whatsapp_from, **kw))


def vonage_sms(sim: Sim, **kw: Any) -> Vonage:
    s = sim.settings
    args: dict[str, Any] = {"base_url": s.vonage_base_url, "api_key": s.vonage_api_key,
                            "api_secret": s.vonage_api_secret, "from_": s.vonage_from,
                            "public_url": "https://herald.example.com", **kw}  # fmt: skip
    return Vonage(sim.session, **args)


def whatsapp_cloud(sim: Sim, **kw: Any) -> WhatsAppCloud:
    s = sim.settings
    args: dict[str, Any] = {"base_url": s.whatsapp_base_url,
                            "phone_number_id": s.whatsapp_phone_number_id,
                            "token": s.whatsapp_token, **kw}  # fmt: skip
    return WhatsAppCloud(sim.session, **args)


def fcm_push(sim: Sim, token: Any = None, **kw: Any) -> Fcm:
    s = sim.settings
    provider = token or StaticToken(s.fcm_access_token)
    return Fcm(sim.session, base_url=s.fcm_base_url, project_id=s.fcm_project_id,
               token_provider=provider, **kw)  # fmt: skip


def smtp_relay(sim: Sim, **kw: Any) -> Smtp:
    args: dict[str, Any] = {"host": "127.0.0.1", "port": sim.smtp_port,
                            "from_email": "notifications@herald.test", "from_name": "Herald",
                            **kw}  # fmt: skip
    return Smtp(**args)
