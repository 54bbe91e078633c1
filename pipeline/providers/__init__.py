"""Provider adapters: one per provider, each speaking that provider's real protocol.

Every adapter maps the provider's answers to one classification: `Accepted`
(with the provider's message id) or a `DeliveryError` subclass from
`pipeline.exceptions` (transient, recipient unreachable, invalid data, auth).
"""

from __future__ import annotations

import aiohttp

from ..settings import Settings
from .base import Accepted, Message, Provider
from .sendgrid import SendGrid

__all__ = ["Accepted", "Message", "Provider", "SendGrid", "build_providers"]


def build_providers(
    settings: Settings, session: aiohttp.ClientSession
) -> dict[str, list[Provider]]:
    """Per channel, the providers in failover order (primary first)."""
    sendgrid = SendGrid(
        session,
        base_url=settings.sendgrid_base_url,
        api_key=settings.sendgrid_api_key,
        from_email=settings.email_from,
        from_name=settings.email_from_name,
        timeout=settings.provider_timeout_s,
    )
    return {"email": [sendgrid]}
