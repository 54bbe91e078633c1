"""Twilio Programmable Messaging, simulated: SMS, and WhatsApp through Twilio.

`POST /2010-04-01/Accounts/{sid}/Messages.json`, HTTP Basic `sid:token`,
form-encoded. A `whatsapp:+E164` To makes it WhatsApp (provider
twilio-whatsapp, its own fault script); the From must be of the same kind.
201 carries the message `sid`; errors are `{"code", "message", "more_info",
"status"}`. Faults: `5xx` is 500 code 20500, `429` is 429 code 20429 with
Retry-After.

Conventions: a number starting `+999` is invalid (21211); through WhatsApp a
number ending in 0000 is not a WhatsApp user (63003; Twilio mostly reports
that in the status callback, the simulator answers it at once).

Webhook: when the request named a StatusCallback, `sent` then `delivered`
are posted there, signed with the account's auth token.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from email.utils import formatdate
from urllib.parse import urlencode

from aiohttp import web

from pipeline.http.webhooks import twilio as webhook
from pipeline.simulator.state import FaultKind, Post, SimProvider, SimulatorState
from pipeline.simulator.wire import (
    basic,
    json_response,
    state_of,
    take_fault,
    webhook_headers,
)

__all__ = ["E164", "SIM", "WHATSAPP_PREFIX", "messages"]

SMS, WHATSAPP = "twilio", "twilio-whatsapp"
WHATSAPP_PREFIX = "whatsapp:"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return json_response(
        {"code": code, "message": message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status, headers,
    )  # fmt: skip


async def messages(request: web.Request) -> web.Response:
    state = state_of(request)
    settings = state.settings
    sid = request.match_info["sid"]
    login, password = basic(request)
    if (
        login != settings.twilio_account_sid
        or password != settings.twilio_auth_token
        or sid != settings.twilio_account_sid
    ):
        return _error(401, 20003, "Authenticate")
    form = await request.post()
    to, from_ = str(form.get("To", "")), str(form.get("From", ""))
    whatsapp = to.startswith(WHATSAPP_PREFIX)
    provider = WHATSAPP if whatsapp else SMS
    number = to.removeprefix(WHATSAPP_PREFIX)
    failure = await take_fault(request, provider, number)
    if failure is not None and failure.kind is FaultKind.SERVER_ERROR:
        return _error(500, 20500, "An internal server error has occurred")
    if failure is not None and failure.kind is FaultKind.RATE_LIMITED:
        return _error(429, 20429, "Too Many Requests", {"Retry-After": str(failure.retry_after)})
    if not to:
        return _error(400, 21604, "A 'To' phone number is required.")
    if not E164.match(number) or number.startswith("+999"):
        return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not from_ or whatsapp != from_.startswith(WHATSAPP_PREFIX):
        return _error(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(400, 21602, "Message body is required.")
    if whatsapp and number.endswith("0000"):
        return _error(400, 63003, "Channel could not find To address: not a WhatsApp user")
    message_sid = "SM" + uuid.uuid4().hex
    callback = str(form.get("StatusCallback", "")) or None
    state.record(
        provider, "whatsapp" if whatsapp else "sms", number,
        {"body": form["Body"], "from": from_, "statusCallback": callback},
        message_sid,
    )  # fmt: skip
    if callback:
        fields = {"AccountSid": sid, "ApiVersion": "2010-04-01", "From": from_, "To": to,
                  "MessageSid": message_sid, "SmsSid": message_sid}  # fmt: skip
        state.later(
            _status(state, callback, fields, "sent"),
            _status(state, callback, fields, "delivered"),
        )
    return json_response(
        {"sid": message_sid, "account_sid": sid, "to": to, "from": from_,
         "body": form["Body"], "status": "queued", "num_segments": "1",
         "direction": "outbound-api", "api_version": "2010-04-01",
         "date_created": formatdate(usegmt=True), "error_code": None,
         "error_message": None,
         "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"},
        201,
    )  # fmt: skip


def _status(state: SimulatorState, url: str, fields: Mapping[str, str], status: str) -> Post:
    async def post() -> None:
        params = {**fields, "MessageStatus": status, "SmsStatus": status}
        signature = webhook.sign(state.settings.twilio_auth_token, url, params.items())
        await state.post(
            url, urlencode(params).encode(),
            webhook_headers({webhook.SIGNATURE: signature}, "application/x-www-form-urlencoded"),
        )  # fmt: skip

    return post


SIM = SimProvider(
    names=(SMS, WHATSAPP),
    routes=(web.post("/2010-04-01/Accounts/{sid}/Messages.json", messages),),
)
