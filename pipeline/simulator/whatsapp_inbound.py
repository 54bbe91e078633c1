"""The WhatsApp Cloud API's webhooks, simulated: statuses, and users writing in.

Every webhook the simulated Cloud API posts goes through `post_change`: the
`whatsapp_business_account` envelope with one change whose `value` carries the
business number's `metadata`, signed `X-Hub-Signature-256` with the app secret, to
the pipeline's `/webhooks/whatsapp-cloud`.

`POST /_sim/whatsapp/inbound` `{"from": "+34600111222", "text": "hola", "ageSeconds": 0}`
makes a user write to the business: the simulator remembers when (now minus
`ageSeconds`, to stage a conversation that is already old), which opens that number's
24-hour customer-service window for free-form messages (the Cloud API's rule, enforced
by `pipeline.simulator.whatsapp_cloud`), and posts the inbound-message webhook
(`value.messages[]` with `from`, `id`, `timestamp`, `type: text`) before it answers:
`{"id": <wamid>, "webhookStatus": <the pipeline's HTTP status>}`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from pipeline.http.webhooks import whatsapp_cloud as webhook
from pipeline.simulator.state import SimulatorState
from pipeline.simulator.wire import digits, json_response, state_of, valid_msisdn, webhook_headers

__all__ = ["DISPLAY_NUMBER", "inbound", "post_change"]

DISPLAY_NUMBER = "15550000001"  # the business number as WhatsApp shows it


async def post_change(state: SimulatorState, value: dict[str, Any]) -> int | None:
    """Post one signed `messages` change to the pipeline; its HTTP status."""
    settings = state.settings
    doc = {"object": "whatsapp_business_account",
           "entry": [{"id": "sim-waba", "changes": [{"field": "messages", "value": {
               "messaging_product": "whatsapp",
               "metadata": {"display_phone_number": DISPLAY_NUMBER,
                            "phone_number_id": settings.whatsapp_phone_number_id},
               **value}}]}]}  # fmt: skip
    body = orjson.dumps(doc)
    headers = {webhook.SIGNATURE: webhook.sign(settings.whatsapp_app_secret, body)}
    return await state.post(
        f"{settings.sim_webhook_url}/webhooks/whatsapp-cloud", body,
        webhook_headers(headers, "application/json"),
    )  # fmt: skip


async def inbound(request: web.Request) -> web.Response:
    """A user writes to the business: the window opens, the webhook goes to the pipeline."""
    state = state_of(request)
    try:
        doc = orjson.loads(await request.read())
        number = digits(str(doc["from"]))
        text = str(doc.get("text") or "hola")
        age = doc.get("ageSeconds", 0)
        if type(age) is not int or age < 0:
            raise ValueError("ageSeconds must be a non-negative integer")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return json_response({"title": "invalid inbound message", "detail": str(exc)}, 400)
    if not valid_msisdn(number):
        return json_response({"title": "invalid inbound message", "detail": "from"}, 400)
    sent_at = time.time() - age
    state.whatsapp_inbound[number] = max(sent_at, state.whatsapp_inbound.get(number, 0.0))
    wamid = "wamid." + secrets.token_urlsafe(30)
    status = await post_change(state, {
        "contacts": [{"profile": {"name": "Sim User"}, "wa_id": number}],
        "messages": [{"from": number, "id": wamid, "timestamp": str(int(sent_at)),
                      "type": "text", "text": {"body": text}}],
    })  # fmt: skip
    return json_response({"id": wamid, "webhookStatus": status})
