"""Provider adapters: one per provider, each speaking that provider's real protocol.

Every adapter implements `Provider` (`base`): `send`, and the batch interface
(`supports_batch`, `batchable`, `send_batch`; `SingleSendProvider` for those
without a batch API). It maps the provider's answers to one classification:
`Accepted` (with the provider's message id) or a `DeliveryError` subclass from
`pipeline.exceptions`, through its declarative `ErrorTable` (`errors`). The
HTTP adapters call through one `HttpCall` (`transport`).

`build_providers(settings, session)` builds them all from the settings, per
channel in failover order: [primary, secondary].
"""

from __future__ import annotations

import aiohttp

from pipeline.providers.base import (
    Accepted,
    Message,
    Provider,
    SingleSendProvider,
    WhatsAppTemplate,
)
from pipeline.providers.fcm import Fcm, ServiceAccountToken, StaticToken, TokenProvider
from pipeline.providers.sendgrid import SendGrid
from pipeline.providers.smtp import Smtp
from pipeline.providers.twilio import TwilioSms, TwilioWhatsApp
from pipeline.providers.vonage import Vonage
from pipeline.providers.whatsapp import WhatsAppCloud
from pipeline.settings import Settings

__all__ = [
    "Accepted",
    "Fcm",
    "Message",
    "Provider",
    "SendGrid",
    "ServiceAccountToken",
    "SingleSendProvider",
    "Smtp",
    "StaticToken",
    "TokenProvider",
    "TwilioSms",
    "TwilioWhatsApp",
    "Vonage",
    "WhatsAppCloud",
    "WhatsAppTemplate",
    "build_providers",
]


def build_providers(
    settings: Settings, session: aiohttp.ClientSession
) -> dict[str, list[Provider]]:
    """Every provider, per channel, in failover order: primary first, then secondary.

    email [sendgrid, smtp], sms [twilio, vonage], whatsapp [whatsapp-cloud,
    twilio-whatsapp], push [fcm]. The HTTP adapters share `session`.
    """
    timeout = settings.provider_timeout_s

    def twilio(cls: type[TwilioSms | TwilioWhatsApp], from_number: str) -> Provider:
        return cls(
            session,
            base_url=settings.twilio_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=from_number,
            public_url=settings.public_url,
            timeout=timeout,
        )

    token: TokenProvider
    if settings.fcm_service_account_file:
        token = ServiceAccountToken(
            settings.fcm_service_account_file, settings.fcm_token_url or None, session,
            timeout=timeout,
        )  # fmt: skip
    else:
        token = StaticToken(settings.fcm_access_token)
    return {
        "email": [
            SendGrid(
                session,
                base_url=settings.sendgrid_base_url,
                api_key=settings.sendgrid_api_key,
                from_email=settings.email_from,
                from_name=settings.email_from_name,
                timeout=timeout,
            ),
            Smtp(
                host=settings.smtp_host,
                port=settings.smtp_port,
                from_email=settings.email_from,
                from_name=settings.email_from_name,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                timeout=timeout,
            ),
        ],
        "sms": [
            twilio(TwilioSms, settings.twilio_from),
            Vonage(
                session,
                base_url=settings.vonage_base_url,
                api_key=settings.vonage_api_key,
                api_secret=settings.vonage_api_secret,
                from_=settings.vonage_from,
                public_url=settings.public_url,
                timeout=timeout,
            ),
        ],
        "whatsapp": [
            WhatsAppCloud(
                session,
                base_url=settings.whatsapp_base_url,
                phone_number_id=settings.whatsapp_phone_number_id,
                token=settings.whatsapp_token,
                api_version=settings.whatsapp_api_version,
                timeout=timeout,
            ),
            twilio(TwilioWhatsApp, settings.twilio_whatsapp_from),
        ],
        "push": [
            Fcm(
                session,
                base_url=settings.fcm_base_url,
                project_id=settings.fcm_project_id,
                token_provider=token,
                timeout=timeout,
            )
        ],
    }
