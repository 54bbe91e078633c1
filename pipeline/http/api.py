"""The HTTP API (aiohttp), served from inside the worker.

It runs in the worker because the query side is the worker's own
notification-state table: a GET is a local table read, and a POST is one
produce to `herald.notifications.requests` acknowledged by the broker before
the 202. Errors are `application/problem+json` (RFC 9457).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from pipeline.domain.compliance import evaluate_consent
from pipeline.domain.ids import (
    message_id_for_idempotency_key,
    message_key,
    new_message_id,
    user_key,
)
from pipeline.domain.records import audit_record
from pipeline.domain.routing import route_channels
from pipeline.domain.state import public_view
from pipeline.domain.validation import check_request, normalize_request
from pipeline.exceptions import AuthError, ScopeError, TemplateError, ValidationError
from pipeline.http.auth import Principal, TokenVerifier
from pipeline.http.webhooks import WEBHOOK_PROVIDERS, verify_and_parse, verify_whatsapp_subscription
from pipeline.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROBLEM = "application/problem+json"
MAX_WAIT_S = 30.0
# A client waiting with `Prefer: wait` gets an answer at the first of these.
OUTCOMES = {"SENT", "DELIVERED", "BOUNCED", "FAILED", "DLQ", "BLOCKED", "CANCELLED"}
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def prefer_wait(values: list[str]) -> float:
    """Seconds from `Prefer: wait=N` (RFC 7240), at most MAX_WAIT_S; 0 without it."""
    for value in values:
        match = PREFER_WAIT.search(value)
        if match:
            return min(float(match.group(1)), MAX_WAIT_S)
    return 0.0


PRINCIPAL = "herald.principal"


def problem(
    status: int, title: str, detail: str = "", type: str = "about:blank", **extra: Any
) -> web.Response:
    body: dict[str, Any] = {"type": type, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


class Ingress:
    """Routes and handlers; `ready` is a callable saying whether the worker serves."""

    def __init__(self, rt: Runtime, verifier: TokenVerifier, ready: Callable[[], bool]) -> None:
        self.rt = rt
        self.verifier = verifier
        self.ready = ready

    def build(self) -> web.Application:
        app = web.Application(
            client_max_size=self.rt.settings.http_max_body,
            middlewares=[self.errors_and_metrics],
        )
        app.router.add_post("/v1/notifications", self.post_notification)
        app.router.add_get("/v1/notifications/{messageId}", self.get_notification)
        app.router.add_post("/webhooks/{provider}", self.provider_webhook)
        app.router.add_get("/webhooks/whatsapp-cloud", self.whatsapp_subscription)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        return app

    @web.middleware
    async def errors_and_metrics(self, request: web.Request, handler: Handler) -> Any:
        started = time.perf_counter()
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        try:
            response = await self._guarded(request, handler)
        finally:
            self.rt.metrics.http_seconds.labels(route_name).observe(time.perf_counter() - started)
        self.rt.metrics.http_requests.labels(route_name, str(response.status)).inc()
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path.startswith("/v1/"):
                request[PRINCIPAL] = self.verifier.verify(request.headers.get("Authorization"))
            return await handler(request)
        except ScopeError as exc:
            return problem(403, "Forbidden", str(exc))
        except AuthError as exc:
            resp = problem(401, "Unauthorized", str(exc))
            resp.headers["WWW-Authenticate"] = 'Bearer realm="herald"'
            return resp
        except TemplateError as exc:
            return problem(422, "Unprocessable template", str(exc), errors=exc.errors)
        except ValidationError as exc:
            return problem(422, "Invalid request", str(exc), errors=exc.errors)
        except web.HTTPRequestEntityTooLarge:
            limit = self.rt.settings.http_max_body
            return problem(413, "Payload too large", f"the body may be at most {limit} bytes")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem(exc.status, exc.reason, exc.text or "")

    async def _json_body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise web.HTTPBadRequest(reason="Bad Request", text=f"malformed JSON: {exc}") from exc

    async def post_notification(self, request: web.Request) -> web.Response:
        principal: Principal = request[PRINCIPAL]
        principal.require("notifications:send")
        body = await self._json_body(request)
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(reason="Bad Request", text="the body must be a JSON object")
        tenant = principal.tenant
        idem = request.headers.get("Idempotency-Key")
        message_id = body.get("messageId") or (
            message_id_for_idempotency_key(tenant, idem) if idem else new_message_id()
        )
        record = normalize_request(body, tenant, str(message_id))
        check_request(record, self.rt.templates)
        key = user_key(tenant, record["recipient"]["userId"])
        refusal = self._opted_out(key, record)
        if refusal is not None:
            # Seed 6.12: the blocked notification is audited and the client told at once.
            await (await self.rt.sinks.audit.send(key=key, value=refusal))
            return problem(
                403, "Recipient opted out",
                f"the recipient declined this notification ({refusal['rule']})",
                type="urn:herald:problem:opted-out", rule=refusal["rule"],
                messageId=record["messageId"],
            )  # fmt: skip
        fut = await self.rt.sinks.requests.send(key=key, value=record)
        await fut  # acknowledged by the broker before we answer
        location = f"/v1/notifications/{record['messageId']}"
        wait = prefer_wait(request.headers.getall("Prefer", []))
        if wait:
            state = await self._wait_for_outcome(message_key(tenant, record["messageId"]), wait)
            if state is not None:
                applied = {"Location": location, "Preference-Applied": f"wait={wait:g}"}
                return json_response(public_view(state), headers=applied)
        return json_response(
            {"messageId": record["messageId"], "status": "PENDING"},
            status=202,
            headers={"Location": location},
        )

    def _opted_out(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """The audit record of a refusal, when consent is withdrawn on every channel.

        Reads this worker's copy of the preferences table: with several workers a
        partition owned elsewhere is not seen here, and the pipeline blocks the
        message instead (status BLOCKED, same audit).
        """
        preferences = self.rt.tables.preferences.get(key)
        channels = route_channels(record, self.rt.available_channels)
        if not preferences or not channels:
            return None
        decisions = [evaluate_consent(preferences, c, record["priority"]) for c in channels]
        if any(d.allowed for d in decisions):
            return None
        return audit_record(record, "BLOCKED", decisions[0].rule, channels[0])

    async def _wait_for_outcome(self, key: str, seconds: float) -> dict[str, Any] | None:
        """The state once the message has an outcome (sent, or a final status), else None."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            state = self.rt.tables.state.get(key)
            if state is not None and state["status"] in OUTCOMES:
                return dict(state)
            await asyncio.sleep(0.02)
        return None

    async def get_notification(self, request: web.Request) -> web.Response:
        principal: Principal = request[PRINCIPAL]
        principal.require("notifications:read")
        message_id = request.match_info["messageId"]
        doc = self.rt.tables.state.get(message_key(principal.tenant, message_id))
        if doc is None:  # another tenant's message is as absent as an unknown one
            return problem(404, "Not Found", f"no notification {message_id}")
        return json_response(public_view(doc))

    async def provider_webhook(self, request: web.Request) -> web.Response:
        """Delivery events from a provider: signature checked, then onto provider.events."""
        provider = request.match_info["provider"]
        if provider not in WEBHOOK_PROVIDERS:
            return problem(404, "Not Found", f"no webhook for provider {provider!r}")
        body = await request.read()
        events = verify_and_parse(
            provider,
            url=self.rt.settings.public_url.rstrip("/") + request.path_qs,
            headers=request.headers,
            body=body,
            settings=self.rt.settings,
        )
        futures = []
        for event in events:
            if not (event.get("tenant") and event.get("messageId")):
                continue  # not a message Herald sent (no join key): nothing to update
            key = message_key(event["tenant"], event["messageId"])
            futures.append(await self.rt.sinks.provider_events.send(key=key, value=event))
        for fut in futures:
            await fut  # acknowledged before the provider hears 200
        return json_response({"accepted": len(futures)})

    async def whatsapp_subscription(self, request: web.Request) -> web.Response:
        challenge = verify_whatsapp_subscription(request.query, self.rt.settings)
        if challenge is None:
            return problem(403, "Forbidden", "verification token mismatch")
        return web.Response(text=challenge)

    async def healthz(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.ready()
        self.rt.metrics.ready.set(1 if ready else 0)
        if not ready:
            return problem(503, "Not ready", "the worker is joining its group or recovering tables")
        return json_response({"status": "ready"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.rt.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
