"""`/webhooks/...`: providers' delivery events in, signature checked, onto Kafka.

The provider's own signature is the authentication (no JWT); the schemes live in
`pipeline.http.webhooks`. A receiver whose secret is unset is off (404
`webhook-receiver-off`); a wrong, missing or stale signature is 401. Every refusal
counts in `herald_webhooks_refused{provider, reason}`. Events are published to
`herald.provider.events` before the provider hears 200, so a provider that sees an
error retries; whether an event matches the message's own attempt is decided by
the provider-events stage, where the message's state is local. A WhatsApp Cloud
webhook's inbound messages go to `herald.whatsapp.service-windows` the same way.
"""

from __future__ import annotations

from aiohttp import web

from pipeline.domain.ids import message_key
from pipeline.domain.service_window import window_key
from pipeline.exceptions import AuthError, StaleSignature
from pipeline.http.context import Call, Context, json_response
from pipeline.http.problems import NOT_FOUND, SUBSCRIPTION_REFUSED, WEBHOOK_OFF, WEBHOOK_UNSIGNED
from pipeline.http.webhooks import (
    SECRETS,
    WEBHOOK_PROVIDERS,
    receivers_off,
    verify_and_parse,
    verify_whatsapp_subscription,
    whatsapp_cloud,
)

__all__ = ["provider_webhook", "whatsapp_subscription"]


async def provider_webhook(ctx: Context, call: Call) -> web.Response:
    """Delivery events from a provider: signature checked, then onto provider.events."""
    door, request = ctx.door, call.request
    provider = request.match_info["provider"]
    if provider not in WEBHOOK_PROVIDERS:
        return NOT_FOUND.answer(f"no webhook for provider {provider!r}")
    refused = door.metrics.webhooks_refused
    if provider in receivers_off(door.settings):
        refused.labels(provider, "receiver-off").inc()
        return WEBHOOK_OFF.answer(f"{SECRETS[provider][1]} is not set on this worker")
    try:
        events = verify_and_parse(
            provider,
            url=door.settings.public_url.rstrip("/") + request.path_qs,
            headers=request.headers,
            body=await request.read(),
            settings=door.settings,
        )
    except AuthError as exc:  # not a bearer token: no WWW-Authenticate challenge
        stale = isinstance(exc, StaleSignature)
        refused.labels(provider, "stale-signature" if stale else "bad-signature").inc()
        return WEBHOOK_UNSIGNED.answer(str(exc))
    records = []
    for event in events:
        if not (event.get("tenant") and event.get("messageId")):
            # Not a message Herald sent (no join key): nothing to update.
            door.metrics.provider_events_dropped.labels(event["provider"], "no-join-key").inc()
            continue
        records.append((message_key(event["tenant"], event["messageId"]), event))
    await door.produce("provider_events", records)  # acknowledged before the provider hears 200
    windows = []
    if provider == whatsapp_cloud.PROVIDER:  # the user wrote: the service window opens
        windows = [(window_key(w["phoneNumberId"], w["number"]), w)
                   for w in whatsapp_cloud.inbound(await request.read())]  # fmt: skip
        await door.produce("service_windows", windows)
    return json_response({"accepted": len(records) + len(windows)})


async def whatsapp_subscription(ctx: Context, call: Call) -> web.Response:
    """Meta's subscription handshake: echo `hub.challenge` when the verify token matches."""
    if call.request.match_info["provider"] != "whatsapp-cloud":
        return NOT_FOUND.answer("only whatsapp-cloud verifies its webhook with a GET")
    challenge = verify_whatsapp_subscription(call.request.query, ctx.door.settings)
    if challenge is None:
        return SUBSCRIPTION_REFUSED.answer("verification token mismatch")
    return web.Response(text=challenge)
