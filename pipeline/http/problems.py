"""The API's errors: each kind of problem declared once, answered as RFC 9457 problem+json.

A `ProblemKind` is both what the ingress answers (`answer`) and what the API
description documents (`pipeline.http.openapi` lists an operation's kinds per
status), so a documented problem and an answered one are the same object. The
exceptions of `pipeline.exceptions` map to kinds in `for_exception`, most
specific first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from pipeline.exceptions import (
    AuthError,
    HeraldError,
    MalformedBody,
    QuotaExceeded,
    Rebalancing,
    RequestTooLarge,
    ScopeError,
    StateBehind,
    TemplateError,
    ValidationError,
    WorkerUnavailable,
)
from pipeline.http.models import (
    IdempotencyConflictProblem,
    OptedOutProblem,
    Problem,
    QuotaProblem,
    ValidationProblem,
)

__all__ = [
    "BAD_TEMPLATE",
    "FORBIDDEN",
    "IDEMPOTENCY_CONFLICT",
    "INTERNAL",
    "INVALID",
    "KINDS_BY_ERROR",
    "MALFORMED",
    "NOT_FOUND",
    "NOT_READY",
    "OPTED_OUT",
    "PROBLEM_JSON",
    "QUOTA",
    "REBALANCING",
    "STATE_BEHIND",
    "SUBSCRIPTION_REFUSED",
    "TOO_LARGE",
    "UNAUTHORIZED",
    "WEBHOOK_OFF",
    "WEBHOOK_UNSIGNED",
    "WORKER_UNAVAILABLE",
    "ProblemKind",
    "for_exception",
]

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class ProblemKind:
    """One kind of error: status, RFC 9457 `type` (uri) and `title`, when it happens, its body."""

    status: int
    title: str
    when: str
    uri: str = "about:blank"  # the RFC 9457 `type`
    model: type[Problem] = Problem
    headers: tuple[tuple[str, str], ...] = ()

    def answer(
        self, detail: str = "", headers: dict[str, str] | None = None, **extra: Any
    ) -> web.Response:
        """The problem document; `headers` replace the kind's documented ones (Retry-After)."""
        body: dict[str, Any] = {"type": self.uri, "title": self.title, "status": self.status}
        if detail:
            body["detail"] = detail
        body.update(extra)
        return web.Response(
            status=self.status,
            body=orjson.dumps(body),
            content_type=PROBLEM_JSON,
            headers={**dict(self.headers), **(headers or {})},
        )


MALFORMED = ProblemKind(400, "Bad Request", "the body is not JSON, or not a JSON object")
UNAUTHORIZED = ProblemKind(
    401,
    "Unauthorized",
    "no bearer token, or one that is expired, wrongly signed or without a tenant",
    headers=(("WWW-Authenticate", 'Bearer realm="herald"'),),
)
WEBHOOK_UNSIGNED = ProblemKind(
    401,
    "Unauthorized",
    "the provider's signature is missing or wrong, or its signed timestamp is outside the "
    "replay window (HERALD_WEBHOOK_REPLAY_WINDOW)",
)
WEBHOOK_OFF = ProblemKind(
    404,
    "Webhook receiver off",
    "this worker has no secret for the provider's signature, so its receiver is off",
    uri="urn:herald:problem:webhook-receiver-off",
)
FORBIDDEN = ProblemKind(403, "Forbidden", "the token lacks the scope this call needs")
OPTED_OUT = ProblemKind(
    403,
    "Recipient opted out",
    "the recipient withdrew consent for every channel this would use (audited, not sent)",
    uri="urn:herald:problem:opted-out",
    model=OptedOutProblem,
)
SUBSCRIPTION_REFUSED = ProblemKind(403, "Forbidden", "the verification token does not match")
NOT_FOUND = ProblemKind(404, "Not Found", "nothing by that name for this tenant")
IDEMPOTENCY_CONFLICT = ProblemKind(
    409,
    "Idempotency conflict",
    "the messageId (or Idempotency-Key) names a request already accepted with another body",
    uri="urn:herald:problem:idempotency-conflict",
    model=IdempotencyConflictProblem,
)
TOO_LARGE = ProblemKind(
    413,
    "Payload too large",
    "the body is over HERALD_HTTP_MAX_BODY, or the request over what its Kafka topic takes",
)
INVALID = ProblemKind(
    422, "Invalid request", "a field is missing or invalid", model=ValidationProblem
)
BAD_TEMPLATE = ProblemKind(
    422,
    "Unprocessable template",
    "unknown template, or a variable the template needs is missing",
    model=ValidationProblem,
)
QUOTA = ProblemKind(
    429,
    "Too Many Requests",
    "the tenant sent more than its quota (HERALD_TENANT_RATE, HERALD_TENANT_QUOTAS); "
    "try again after Retry-After seconds",
    uri="urn:herald:problem:quota",
    model=QuotaProblem,
    headers=(("Retry-After", "1"),),
)
NOT_READY = ProblemKind(503, "Not ready", "the worker is joining its group or recovering tables")
WORKER_UNAVAILABLE = ProblemKind(
    503, "Worker unavailable",
    "the ingress could not reach its worker (HERALD_WORKER_URL), or a worker the one that "
    "holds the message's state",
    uri="urn:herald:problem:worker-unavailable",
)  # fmt: skip
REBALANCING = ProblemKind(
    503, "Rebalancing",
    "the workers are moving partitions between them, so the worker that holds this "
    "state is not known yet; try again after Retry-After seconds",
    uri="urn:herald:problem:rebalancing",
    headers=(("Retry-After", "1"),),
)  # fmt: skip
STATE_BEHIND = ProblemKind(
    503, "State behind",
    "the worker's state has not yet caught up with the statuses written before this "
    "request (a backlog), so the message is neither shown nor denied; try again after "
    "Retry-After seconds",
    uri="urn:herald:problem:state-behind",
    headers=(("Retry-After", "1"),),
)  # fmt: skip
INTERNAL = ProblemKind(500, "Internal Server Error", "a fault of the server (logged)")


# Most specific first: a ScopeError is an AuthError, a TemplateError a ValidationError.
KINDS_BY_ERROR: tuple[tuple[type[HeraldError], ProblemKind], ...] = (
    (ScopeError, FORBIDDEN),
    (AuthError, UNAUTHORIZED),
    (MalformedBody, MALFORMED),
    (TemplateError, BAD_TEMPLATE),
    (RequestTooLarge, TOO_LARGE),
    (ValidationError, INVALID),
    (Rebalancing, REBALANCING),
    (StateBehind, STATE_BEHIND),
    (WorkerUnavailable, WORKER_UNAVAILABLE),
)


def for_exception(exc: Exception, max_body: int) -> web.Response | None:
    """The problem answer for an error a handler raised; None for one that is not ours."""
    for error, kind in KINDS_BY_ERROR:
        if isinstance(exc, error):
            extra: dict[str, Any] = {}
            if isinstance(exc, ValidationError):  # never an empty list: a person reads it
                extra["errors"] = exc.errors or [{"field": "", "message": str(exc)}]
            return kind.answer(str(exc), **extra)
    if isinstance(exc, QuotaExceeded):
        wait = str(max(1, math.ceil(exc.retry_after)))  # delta-seconds: a whole number
        return QUOTA.answer(str(exc), headers={"Retry-After": wait}, retryAfter=int(wait))
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return TOO_LARGE.answer(f"the body may be at most {max_body} bytes")
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        # aiohttp's own: no route (404), method not allowed (405, with its Allow header).
        allow = tuple((k, v) for k, v in exc.headers.items() if k.lower() == "allow")
        return ProblemKind(exc.status, exc.reason, "", headers=allow).answer(exc.text or "")
    return None
