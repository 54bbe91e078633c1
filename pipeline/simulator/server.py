"""The provider simulator: the real providers' endpoints, on loopback, for tests and demos.

It answers the same wire protocol as the real services (so the adapters are
the production adapters), checks credentials the way each one does, records
every message it accepted, posts signed delivery webhooks back, and takes
fault scripts.

| provider        | endpoint                                               | credentials        |
| --------------- | ------------------------------------------------------ | ------------------ |
| sendgrid        | POST /v3/mail/send                                     | Bearer API key     |
| twilio          | POST /2010-04-01/Accounts/{sid}/Messages.json          | Basic sid:token    |
| twilio-whatsapp | the same, with whatsapp:+E164 addresses                | Basic sid:token    |
| vonage          | POST /sms/json (form or JSON)                          | api_key/api_secret |
| whatsapp-cloud  | POST /vNN.0/{phone_number_id}/messages                 | Bearer token       |
| fcm             | POST /v1/projects/{project}/messages:send, POST /token | Bearer OAuth token |
| smtp            | the SMTP sink on HERALD_SIM_SMTP_PORT (smtp_sink.py)   | AUTH if configured |

Inspection: `GET /_sim/messages` (each `{seq, provider, channel, to, content,
providerMessageId, at}`; `to` is the email address, the E.164 phone number or
the push token; `?after=<seq>` only the newer ones, `?to=<recipient>` only that
recipient's), `DELETE /_sim/messages`. Faults: `PUT /_sim/faults/{provider}`
with `{"fail": "5xx"|"429"|"timeout"|"down", "times": N, "latencyMs": N}`,
`DELETE /_sim/faults`. Each fault is rendered the provider's way: Twilio 500
code 20500 and 429 code 20429 with Retry-After; Vonage HTTP 200 with status
"5" and "1"; WhatsApp 500 code 131000 and 429 code 130429; FCM 500 INTERNAL
and 429 QUOTA_EXCEEDED with Retry-After; SendGrid 500 and 429 with
X-RateLimit-Reset; `down` is 503 from every HTTP provider; `timeout` never
answers.

Recipient conventions: a phone ending in 0000 is not a WhatsApp user
(WhatsApp Cloud error 131026, Twilio WhatsApp error 63003); a push token
starting `unregistered-` is UNREGISTERED (404); an address at `bounce.test` is
accepted, then bounced by webhook (SMTP refuses it at RCPT with 550 5.1.1);
an address at `invalid.test` or a phone starting `+999` is rejected as
invalid: SendGrid 400, SMTP 553 5.1.3, Twilio 21211, Vonage status "3",
WhatsApp Cloud 100. A push token starting `invalid-` is INVALID_ARGUMENT.

Webhooks, posted HERALD_SIM_WEBHOOK_DELAY_MS after acceptance to
`{HERALD_SIM_WEBHOOK_URL}/webhooks/{provider}` (Twilio: the StatusCallback URL;
Vonage: the `callback` parameter when given), signed as the real provider
signs (schemes in `pipeline.http.webhooks`): SendGrid `processed`, `delivered`,
`open` (or `processed`, `bounce` for bounce.test) in one array; Twilio
`sent` then `delivered`; WhatsApp Cloud `sent` then `delivered`; Vonage one
`delivered` receipt. SMTP and FCM have no webhook. A webhook that cannot be
posted is logged and dropped.

FCM's OAuth token endpoint (`POST /token`, the JWT-bearer grant) verifies the
assertion's RS256 signature with the key of FCM_SERVICE_ACCOUNT_FILE when the
simulator has that setting; without it, it checks the assertion's claims only.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import re
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
import orjson
import structlog
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from pipeline.clock import now
from pipeline.exceptions import ConfigError
from pipeline.http.webhooks.sendgrid import SIGNATURE as SENDGRID_SIGNATURE
from pipeline.http.webhooks.sendgrid import TIMESTAMP as SENDGRID_TIMESTAMP
from pipeline.http.webhooks.sendgrid import sign as sendgrid_signature
from pipeline.http.webhooks.twilio import SIGNATURE as TWILIO_SIGNATURE
from pipeline.http.webhooks.twilio import sign as twilio_signature
from pipeline.http.webhooks.vonage import sign as vonage_signature
from pipeline.http.webhooks.whatsapp_cloud import SIGNATURE as HUB_SIGNATURE
from pipeline.http.webhooks.whatsapp_cloud import sign as hub_signature
from pipeline.settings import Settings
from pipeline.simulator.smtp_sink import start_smtp_sink, stop_smtp_sink

log = structlog.get_logger("herald.simulator")

FAULTS = ("5xx", "429", "timeout", "down")
PROVIDERS = ("sendgrid", "smtp", "twilio", "twilio-whatsapp", "vonage", "whatsapp-cloud", "fcm")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
FCM_SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class Fault:
    fail: str | None = None
    times: int | None = None  # None: until cleared
    latency_ms: int = 0
    to: str | None = None  # only calls for this recipient (Twilio, SendGrid); None: every call
    retry_after: int = 1  # seconds, in the Retry-After of a 429

    def take(self, to: str | None = None) -> str | None:
        """The failure to inject for this call, consuming one of `times`."""
        if self.fail is None or (self.to is not None and to is not None and to != self.to):
            return None
        if self.times is None:
            return self.fail
        if self.times <= 0:
            return None
        self.times -= 1
        return self.fail


Post = Callable[[], Awaitable[None]]


@dataclass
class SimulatorState:
    """Everything the simulator remembers; one instance per simulator."""

    settings: Settings
    messages: list[dict[str, Any]] = field(default_factory=list)
    next_seq: int = 1  # every recorded message gets the next number: readers keep a cursor
    faults: dict[str, Fault] = field(default_factory=dict)
    fcm_tokens: dict[str, float] = field(default_factory=dict)  # issued token -> expiry
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def record(
        self,
        provider: str,
        channel: str,
        to: str,
        content: Any,
        provider_message_id: str | None = None,
    ) -> str:
        provider_message_id = provider_message_id or uuid.uuid4().hex
        self.next_seq += 1
        self.messages.append(
            {
                "seq": self.next_seq - 1,
                "provider": provider,
                "channel": channel,
                "to": to,
                "content": content,
                "providerMessageId": provider_message_id,
                "at": now(),
            }
        )
        return provider_message_id

    async def stall(self) -> None:
        """A call that never answers (until the simulator stops): the client times out."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), 3600)

    def later(self, *posts: Post) -> None:
        """Run the webhook posts in order, after the configured delay, in the background."""

        async def run() -> None:
            await asyncio.sleep(self.settings.sim_webhook_delay_ms / 1000)
            for post in posts:
                try:
                    await post()
                except Exception as exc:  # a webhook never takes the simulator down
                    log.warning("webhook not delivered", error=repr(exc))

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        if self.session is None:
            log.warning("webhook dropped: simulator not running", url=url)
            return
        async with self.session.post(
            url, data=body, headers=dict(headers), timeout=WEBHOOK_TIMEOUT
        ) as resp:
            if resp.status >= 300:
                log.warning("webhook refused", url=url, status=resp.status)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


def _retry_after(state: SimulatorState, provider: str) -> str:
    fault = state.faults.get(provider)
    return str(fault.retry_after if fault else 1)


async def _apply_fault(state: SimulatorState, provider: str, to: str | None = None) -> str | None:
    """The failure to answer with now (latency applied); a timeout stalls, then 503."""
    fault = state.faults.get(provider)
    if fault is None:
        return None
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    failure = fault.take(to)
    if failure == "timeout":
        await state.stall()
        raise web.HTTPServiceUnavailable()
    if failure == "down":
        raise web.HTTPServiceUnavailable()
    return failure


def _substitute(text: str, substitutions: dict[str, Any]) -> str:
    """SendGrid's legacy substitutions: each tag replaced by the personalization's value."""
    for tag, value in substitutions.items():
        text = text.replace(str(tag), str(value))
    return text


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _basic(request: web.Request) -> tuple[str, str]:
    """HTTP Basic credentials, ("", "") when absent or malformed."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return login, password


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def _webhook_headers(extra: Mapping[str, str], content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "User-Agent": "Herald-Simulator", **extra}


SIM_STATE = web.AppKey("state", SimulatorState)


class Endpoints:
    """The request handlers, sharing one SimulatorState."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.settings = state.settings

    # SendGrid v3 Mail Send.

    async def sendgrid_mail_send(self, request: web.Request) -> web.Response:
        settings, state = self.settings, self.state
        if _bearer(request) != settings.sendgrid_api_key:
            return _json(
                {"errors": [{"message": "The provided authorization grant is invalid, "
                             "expired, or revoked", "field": None}]},
                401,
            )  # fmt: skip
        raw = await request.read()
        try:
            body = orjson.loads(raw)
            first_to = body["personalizations"][0]["to"][0]["email"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            body, first_to = None, None
        failure = await _apply_fault(state, "sendgrid", first_to)
        if failure == "5xx":
            return _json({"errors": [{"message": "internal error", "field": None}]}, 500)
        if failure == "429":
            after = _retry_after(state, "sendgrid")
            reset = str(int(time.time()) + int(after))
            return _json(
                {"errors": [{"message": "too many requests", "field": None}]},
                429,
                {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                 "X-RateLimit-Reset": reset, "Retry-After": after},
            )  # fmt: skip
        if body is None:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return _json({"errors": [{"message": "Bad Request", "field": None}]}, 400)
        errors = _sendgrid_errors(body)
        if errors:
            return _json({"errors": errors}, 400)
        batch_id = secrets.token_urlsafe(16)[:22]
        for i, personalization in enumerate(body["personalizations"]):
            custom_args = {
                **_dict(body.get("custom_args")),
                **_dict(personalization.get("custom_args")),
            }
            substitutions = _dict(personalization.get("substitutions"))
            content = [
                {**part, "value": _substitute(str(part.get("value", "")), substitutions)}
                for part in body.get("content") or []
            ]
            for j, to in enumerate(personalization["to"]):
                state.record(
                    "sendgrid",
                    "email",
                    to["email"],
                    {
                        "subject": personalization.get("subject", body.get("subject")),
                        "content": content,
                        "from": body["from"],
                        "customArgs": personalization.get("custom_args", {}),
                        "batchId": batch_id,
                    },
                    batch_id,
                )
                sg_message_id = f"{batch_id}.filterdrecv-sim-{i}-{j}.0"
                state.later(self._sendgrid_events(to["email"], sg_message_id, custom_args))
        return web.Response(status=202, headers={"X-Message-Id": batch_id})

    def _sendgrid_events(
        self, email: str, sg_message_id: str, custom_args: Mapping[str, Any]
    ) -> Post:
        async def post() -> None:
            ts = int(time.time())
            base = {"email": email, "timestamp": ts, "sg_message_id": sg_message_id,
                    "smtp-id": f"<{sg_message_id.split('.')[0]}@sim.sendgrid.test>",
                    "category": [], **custom_args}  # fmt: skip
            kinds: list[dict[str, Any]] = [{"event": "processed"}]
            if email.lower().endswith("@bounce.test"):
                kinds.append({"event": "bounce", "type": "bounce", "status": "5.1.1",
                              "reason": "550 5.1.1 The email account that you tried to reach "
                                        "does not exist.",
                              "bounce_classification": "Invalid Address"})  # fmt: skip
            else:
                kinds.append({"event": "delivered", "response": "250 2.0.0 OK"})
                kinds.append({"event": "open", "useragent": "Mozilla/5.0", "ip": "192.0.2.1",
                              "sg_machine_open": False})  # fmt: skip
            events = [{**base, **kind, "sg_event_id": secrets.token_urlsafe(16)} for kind in kinds]
            body = orjson.dumps(events)
            timestamp = str(int(time.time()))
            signature = sendgrid_signature(
                self.settings.sim_sendgrid_webhook_private_key, timestamp, body
            )
            headers = {SENDGRID_SIGNATURE: signature, SENDGRID_TIMESTAMP: timestamp}
            await self.state.post(
                f"{self.settings.sim_webhook_url}/webhooks/sendgrid", body,
                _webhook_headers(headers, "application/json"),
            )  # fmt: skip

        return post

    # Twilio Programmable Messaging (SMS and WhatsApp).

    async def twilio_messages(self, request: web.Request) -> web.Response:
        settings, state = self.settings, self.state
        sid = request.match_info["sid"]
        login, password = _basic(request)
        if (
            login != settings.twilio_account_sid
            or password != settings.twilio_auth_token
            or sid != settings.twilio_account_sid
        ):
            return _twilio_error(401, 20003, "Authenticate")
        form = await request.post()
        to, from_ = str(form.get("To", "")), str(form.get("From", ""))
        whatsapp = to.startswith("whatsapp:")
        provider = "twilio-whatsapp" if whatsapp else "twilio"
        failure = await _apply_fault(state, provider, to.removeprefix("whatsapp:"))
        if failure == "5xx":
            return _twilio_error(500, 20500, "An internal server error has occurred")
        if failure == "429":
            after = _retry_after(state, provider)
            return _twilio_error(429, 20429, "Too Many Requests", {"Retry-After": after})
        number = to.removeprefix("whatsapp:")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(number) or number.startswith("+999"):
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ or whatsapp != from_.startswith("whatsapp:"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return _twilio_error(400, 21602, "Message body is required.")
        if whatsapp and number.endswith("0000"):
            return _twilio_error(
                400, 63003, "Channel could not find To address: not a WhatsApp user"
            )
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
                self._twilio_status(callback, fields, "sent"),
                self._twilio_status(callback, fields, "delivered"),
            )
        return _json(
            {"sid": message_sid, "account_sid": sid, "to": to, "from": from_,
             "body": form["Body"], "status": "queued", "num_segments": "1",
             "direction": "outbound-api", "api_version": "2010-04-01",
             "date_created": formatdate(usegmt=True), "error_code": None,
             "error_message": None,
             "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"},
            201,
        )  # fmt: skip

    def _twilio_status(self, url: str, fields: Mapping[str, str], status: str) -> Post:
        async def post() -> None:
            params = {**fields, "MessageStatus": status, "SmsStatus": status}
            signature = twilio_signature(self.settings.twilio_auth_token, url, params.items())
            body = urlencode(params).encode()
            await self.state.post(
                url, body,
                _webhook_headers({TWILIO_SIGNATURE: signature},
                                 "application/x-www-form-urlencoded"),
            )  # fmt: skip

        return post

    # Vonage SMS API.

    async def vonage_sms(self, request: web.Request) -> web.Response:
        settings, state = self.settings, self.state
        if request.content_type == "application/json":
            try:
                params = {k: str(v) for k, v in orjson.loads(await request.read()).items()}
            except (orjson.JSONDecodeError, AttributeError):
                return _vonage_answer("2", "Missing api_key")
        else:
            params = {k: str(v) for k, v in (await request.post()).items()}
        params = {**{k: v for k, v in request.query.items()}, **params}
        if not params.get("api_key") or not params.get("api_secret"):
            return _vonage_answer("2", "Missing api_key")
        if (
            params["api_key"] != settings.vonage_api_key
            or params["api_secret"] != settings.vonage_api_secret
        ):
            return _vonage_answer("4", "Bad Credentials")
        failure = await _apply_fault(state, "vonage")
        if failure == "5xx":
            return _vonage_answer("5", "Internal Error")
        if failure == "429":
            return _vonage_answer("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
        for name in ("from", "to", "text"):
            if not params.get(name):
                return _vonage_answer("2", f"Missing {name} param")
        to = _digits(params["to"])
        if len(to) < 7 or len(to) > 15 or to.startswith("999"):
            return _vonage_answer("3", "Invalid to address")
        message_id = secrets.token_hex(8).upper()
        client_ref = params.get("client-ref")
        state.record(
            "vonage", "sms", "+" + to,
            {"text": params["text"], "from": params["from"], "clientRef": client_ref},
            message_id,
        )  # fmt: skip
        callback = params.get("callback") or f"{settings.sim_webhook_url}/webhooks/vonage"
        state.later(self._vonage_receipt(callback, to, message_id, params))
        return _json(
            {"message-count": "1",
             "messages": [{"to": to, "message-id": message_id, "status": "0",
                           "remaining-balance": "10.00000000", "message-price": "0.03330000",
                           "network": "23410",
                           **({"client-ref": client_ref} if client_ref else {})}]}
        )  # fmt: skip

    def _vonage_receipt(
        self, url: str, to: str, message_id: str, request: Mapping[str, str]
    ) -> Post:
        async def post() -> None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            receipt = {"msisdn": to, "to": request["from"], "network-code": "23410",
                       "messageId": message_id, "price": "0.03330000", "status": "delivered",
                       "scts": time.strftime("%y%m%d%H%M", time.gmtime()), "err-code": "0",
                       "api-key": self.settings.vonage_api_key, "message-timestamp": stamp,
                       "timestamp": str(int(time.time())), "nonce": str(uuid.uuid4())}  # fmt: skip
            if request.get("client-ref"):
                receipt["client-ref"] = request["client-ref"]
            receipt["sig"] = vonage_signature(self.settings.vonage_signature_secret, receipt)
            await self.state.post(
                url, orjson.dumps(receipt), _webhook_headers({}, "application/json")
            )

        return post

    # WhatsApp Business Cloud API.

    async def whatsapp_messages(self, request: web.Request) -> web.Response:
        settings, state = self.settings, self.state
        if _bearer(request) != settings.whatsapp_token:
            return _whatsapp_error(
                401, 190, "Invalid OAuth access token - Cannot parse access token", "OAuthException"
            )
        if request.match_info["phone_number_id"] != settings.whatsapp_phone_number_id:
            return _whatsapp_error(
                400, 100,
                f"Unsupported post request. Object with ID "
                f"'{request.match_info['phone_number_id']}' does not exist",
            )  # fmt: skip
        failure = await _apply_fault(state, "whatsapp-cloud")
        if failure == "5xx":
            return _whatsapp_error(500, 131000, "Something went wrong")
        if failure == "429":
            return _whatsapp_error(429, 130429, "Rate limit hit")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _whatsapp_error(400, 100, "Invalid parameter")
        problem = _whatsapp_problem(body)
        if problem:
            return _whatsapp_error(400, 100, f"Invalid parameter: {problem}")
        to = _digits(str(body["to"]))
        if len(to) < 7 or len(to) > 15 or to.startswith("999"):
            return _whatsapp_error(400, 100, "Invalid parameter: recipient phone number not valid")
        if to.endswith("0000"):
            return _whatsapp_error(
                400, 131026, "Message undeliverable",
                details="Unable to deliver message: the recipient is not a WhatsApp user",
            )  # fmt: skip
        wamid = "wamid." + secrets.token_urlsafe(30)
        kind = body.get("type", "text")
        content = {"type": kind, kind: body[kind],
                   "bizOpaqueCallbackData": body.get("biz_opaque_callback_data")}  # fmt: skip
        state.record("whatsapp-cloud", "whatsapp", "+" + to, content, wamid)
        state.later(
            self._whatsapp_status(wamid, to, body.get("biz_opaque_callback_data"), "sent"),
            self._whatsapp_status(wamid, to, body.get("biz_opaque_callback_data"), "delivered"),
        )
        return _json(
            {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": to}],
             "messages": [{"id": wamid, "message_status": "accepted"}]}
        )  # fmt: skip

    def _whatsapp_status(self, wamid: str, to: str, opaque: str | None, status: str) -> Post:
        async def post() -> None:
            settings = self.settings
            entry = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                     "recipient_id": to,
                     "conversation": {"id": "sim-conversation", "origin": {"type": "utility"}},
                     "pricing": {"billable": True, "pricing_model": "CBP",
                                 "category": "utility"}}  # fmt: skip
            if opaque:
                entry["biz_opaque_callback_data"] = opaque
            doc = {"object": "whatsapp_business_account",
                   "entry": [{"id": "sim-waba", "changes": [{"field": "messages", "value": {
                       "messaging_product": "whatsapp",
                       "metadata": {"display_phone_number": "15550000001",
                                    "phone_number_id": settings.whatsapp_phone_number_id},
                       "statuses": [entry]}}]}]}  # fmt: skip
            body = orjson.dumps(doc)
            headers = {HUB_SIGNATURE: hub_signature(settings.whatsapp_app_secret, body)}
            await self.state.post(
                f"{settings.sim_webhook_url}/webhooks/whatsapp-cloud", body,
                _webhook_headers(headers, "application/json"),
            )  # fmt: skip

        return post

    # Firebase Cloud Messaging HTTP v1 and its OAuth token endpoint.

    async def fcm_send(self, request: web.Request) -> web.Response:
        settings, state = self.settings, self.state
        token = _bearer(request)
        valid = token == settings.fcm_access_token or state.fcm_tokens.get(token, 0) > time.time()
        if not token or not valid:
            return _fcm_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials. "
                "Expected OAuth 2 access token, login cookie or other valid authentication "
                "credential.", None,
            )  # fmt: skip
        if request.match_info["project"] != settings.fcm_project_id:
            return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", None)
        failure = await _apply_fault(state, "fcm")
        if failure == "5xx":
            return _fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL")
        if failure == "429":
            return _fcm_error(
                429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages.",
                "QUOTA_EXCEEDED", {"Retry-After": "1"},
            )  # fmt: skip
        try:
            body = orjson.loads(await request.read())
            message = body["message"]
            push_token = str(message.get("token") or "")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return _fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", None)
        counted = {k: message[k] for k in ("notification", "data") if k in message}
        if len(orjson.dumps(counted)) > 4096:
            return _fcm_error(400, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT")
        if (
            not push_token
            or push_token.startswith("invalid-")
            or any(c.isspace() for c in push_token)
        ):
            return _fcm_error(
                400, "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
            )  # fmt: skip
        if push_token.startswith("unregistered-"):
            return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        message_number = f"0:{time.time_ns()}%{uuid.uuid4().hex[:16]}"
        name = f"projects/{settings.fcm_project_id}/messages/{message_number}"
        state.record(
            "fcm", "push", push_token,
            {"notification": message.get("notification"), "data": message.get("data")},
            name,
        )  # fmt: skip
        return _json({"name": name})

    async def oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return _json({"error": "unsupported_grant_type",
                          "error_description": "Invalid grant_type"}, 400)  # fmt: skip
        problem = self._assertion_problem(str(form.get("assertion", "")))
        if problem:
            return _json({"error": "invalid_grant", "error_description": problem}, 400)
        token = "ya29.sim-" + secrets.token_urlsafe(32)
        self.state.fcm_tokens[token] = time.time() + 3599
        return _json({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _assertion_problem(self, assertion: str) -> str | None:
        path = self.settings.fcm_service_account_file
        options: Any = {"require": ["iss", "aud", "exp", "iat", "scope"], "verify_aud": False}
        try:
            if path is not None:
                info = orjson.loads(path.read_bytes())
                public_key = _public_pem(str(info["private_key"]))
                claims = jwt.decode(assertion, public_key, algorithms=["RS256"], options=options)
                if claims["iss"] != info["client_email"]:
                    return "Invalid JWT: iss is not the service account"
            else:
                if jwt.get_unverified_header(assertion).get("alg") != "RS256":
                    return "Invalid JWT: alg must be RS256"
                claims = jwt.decode(assertion, options={**options, "verify_signature": False})
        except (jwt.PyJWTError, OSError, KeyError, ValueError, TypeError) as exc:
            return f"Invalid JWT Signature. ({type(exc).__name__})"
        if not str(claims["aud"]).endswith("/token"):
            return "Invalid JWT: aud is not the token endpoint"
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return "Invalid JWT: Token must be a short-lived token (60 minutes)"
        if not set(str(claims["scope"]).split()) & set(FCM_SCOPES):
            return "Invalid JWT: no FCM scope"
        return None

    # Inspection and faults.

    async def list_messages(self, request: web.Request) -> web.Response:
        """Every message, or only those after `?after=<seq>` and/or to `?to=<recipient>`."""
        messages = self.state.messages
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _json({"title": "after must be an integer"}, 400)
        if after:
            messages = messages[bisect.bisect_right(messages, after, key=lambda m: m["seq"]) :]
        to = request.query.get("to")
        if to is not None:
            messages = [m for m in messages if m["to"] == to]
        return _json(messages)

    async def clear_messages(self, request: web.Request) -> web.Response:
        self.state.messages.clear()
        return web.Response(status=204)

    async def put_fault(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if provider not in PROVIDERS:
            return _json({"title": "unknown provider", "detail": f"one of {PROVIDERS}"}, 404)
        try:
            body = orjson.loads(await request.read())
            fail = body.get("fail")
            if fail is not None and fail not in FAULTS:
                raise ValueError(f"fail must be one of {FAULTS}")
            times, latency = body.get("times"), body.get("latencyMs", 0)
            retry_after, to = body.get("retryAfter", 1), body.get("to")
            for name, value in (("times", times), ("latencyMs", latency),
                                ("retryAfter", retry_after)):  # fmt: skip
                if value is not None and (type(value) is not int or value < 0):
                    raise ValueError(f"{name} must be a non-negative integer")
            if to is not None and not isinstance(to, str):
                raise ValueError("to must be a recipient address or number")
            fault = Fault(fail, times, latency, to, retry_after)
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
            return _json({"title": "invalid fault", "detail": str(exc)}, 400)
        self.state.faults[provider] = fault
        return web.Response(status=204)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.state.faults.clear()
        return web.Response(status=204)


def build_simulator(settings: Settings, state: SimulatorState | None = None) -> web.Application:
    """The simulator's HTTP app; `app[SIM_STATE]` is its SimulatorState."""
    state = state or SimulatorState(settings)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[SIM_STATE] = state
    endpoints = Endpoints(state)

    async def webhook_client(app: web.Application) -> AsyncIterator[None]:
        state.session = aiohttp.ClientSession()
        yield
        state.stopping.set()
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await state.session.close()
        state.session = None

    async def on_shutdown(app: web.Application) -> None:
        state.stopping.set()  # stalled ("timeout") calls return, so shutdown is prompt

    app.cleanup_ctx.append(webhook_client)
    app.on_shutdown.append(on_shutdown)
    e = endpoints
    app.router.add_post("/v3/mail/send", e.sendgrid_mail_send)
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", e.twilio_messages)
    app.router.add_post("/sms/json", e.vonage_sms)
    app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", e.whatsapp_messages)
    app.router.add_post("/v1/projects/{project}/messages:send", e.fcm_send)
    app.router.add_post("/token", e.oauth_token)
    app.router.add_get("/_sim/messages", e.list_messages)
    app.router.add_delete("/_sim/messages", e.clear_messages)
    app.router.add_put("/_sim/faults/{provider}", e.put_fault)
    app.router.add_delete("/_sim/faults", e.clear_faults)
    return app


class Simulator:
    """Both servers (HTTP and the SMTP sink) around one SimulatorState."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = SimulatorState(settings)
        self.app = build_simulator(settings, self.state)
        self._runner: web.AppRunner | None = None
        self._smtp: asyncio.Server | None = None

    async def start(self) -> None:
        settings = self.settings
        # A request once received is processed even if the client hangs up, as a real
        # provider does: a worker killed during a call may still have sent the message.
        self._runner = web.AppRunner(
            self.app, handler_cancellation=False, shutdown_timeout=5.0, access_log=None
        )
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, settings.sim_host, settings.sim_port).start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"simulator cannot listen on {settings.sim_host}:{settings.sim_port}: {exc}"
            ) from exc
        try:
            self._smtp = await start_smtp_sink(
                self.state, settings.sim_host, settings.sim_smtp_port
            )
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"SMTP sink cannot listen on {settings.sim_host}:{settings.sim_smtp_port} "
                f"(HERALD_SIM_SMTP_PORT): {exc}"
            ) from exc

    @property
    def smtp_port(self) -> int:
        assert self._smtp is not None and self._smtp.sockets
        return int(self._smtp.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.state.stopping.set()
        if self._smtp is not None:
            await stop_smtp_sink(self._smtp)
            self._smtp = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def run_simulator(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop both servers cleanly."""
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    simulator = Simulator(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await simulator.start()
    log.info(
        "simulator up",
        http=settings.sim_base_url,
        smtp=f"{settings.sim_host}:{simulator.smtp_port}",
    )
    try:
        await stop.wait()
    finally:
        await simulator.stop()


# Answers in each provider's own shape.


def _twilio_error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return _json(
        {"code": code, "message": message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status, headers,
    )  # fmt: skip


def _vonage_answer(status: str, text: str) -> web.Response:
    return _json({"message-count": "1", "messages": [{"status": status, "error-text": text}]})


def _whatsapp_error(
    status: int, code: int, message: str, kind: str = "OAuthException", *, details: str = ""
) -> web.Response:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": kind, "code": code,
                             "fbtrace_id": secrets.token_urlsafe(12)}  # fmt: skip
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return _json({"error": error}, status)


def _fcm_error(
    status: int,
    canonical: str,
    message: str,
    error_code: str | None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
    if error_code:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        ]
    return _json({"error": error}, status, headers)


def _public_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _whatsapp_problem(body: Any) -> str | None:
    """What WhatsApp's parameter validation would object to, if anything."""
    if not isinstance(body, dict):
        return "body"
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product"
    if not body.get("to"):
        return "to"
    kind = body.get("type", "text")
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, dict) or not text.get("body") or len(str(text["body"])) > 4096:
            return "text.body"
        return None
    if kind == "template":
        template = body.get("template")
        if not isinstance(template, dict) or not template.get("name"):
            return "template.name"
        language = template.get("language")
        if not isinstance(language, dict) or not language.get("code"):
            return "template.language.code"
        return None
    return "type"


def _sendgrid_errors(body: Any) -> list[dict[str, Any]]:
    """The checks SendGrid makes that matter to Herald, with its error shape."""
    errors: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        return [{"message": "Bad Request", "field": None}]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append({"message": "The personalizations field is required and must have at "
                       "least one personalization.", "field": "personalizations"})  # fmt: skip
        personalizations = []
    if len(personalizations) > 1000:
        errors.append({"message": "too many personalizations", "field": "personalizations"})
    seen: set[str] = set()
    for i, p in enumerate(personalizations):
        for to in p.get("to") or []:
            email = str(to.get("email", ""))
            if "@" not in email or email.endswith("@invalid.test"):
                errors.append({"message": "Does not contain a valid address.",
                               "field": f"personalizations.{i}.to"})  # fmt: skip
            if email.lower() in seen:
                message = "Each email address in the personalization block should be unique"
                errors.append({"message": message, "field": f"personalizations.{i}.to"})
            seen.add(email.lower())
        if not p.get("to"):
            errors.append(
                {"message": "The to array is required", "field": f"personalizations.{i}.to"}
            )
    if not isinstance(body.get("from"), dict) or "@" not in str(body["from"].get("email", "")):
        errors.append({"message": "The from email does not contain a valid address.",
                       "field": "from.email"})  # fmt: skip
    if not body.get("content") and not body.get("template_id"):
        errors.append({"message": "Either content or template_id is required.", "field": "content"})
    return errors
