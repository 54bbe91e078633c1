"""Firebase Cloud Messaging HTTP v1, the push provider.

`POST {base}/v1/projects/{project}/messages:send` with `Authorization: Bearer
<OAuth2 access token>` and `{"message": {"token", "notification": {"title",
"body"}, "data": {<the template's push data>, "messageId", "tenant"}, "android":
{"notification": {"tag"}}, "apns": {"headers": {"apns-collapse-id"}}}}` (data values
are strings, as FCM v1 requires). 200 carries `name`
(`projects/{p}/messages/{id}`), the provider message id. FCM has no delivery
webhook, and no idempotency key: a repeated request is a second push. The tag
and the collapse id are derived from the send, so a resend in doubt replaces the
first notification on the device instead of showing twice
(`pipeline.providers.repeat`).

The access token comes from a `TokenProvider`: `StaticToken` (a token
issued elsewhere) or `ServiceAccountToken`, the OAuth2 JWT-bearer flow of a
service-account key (RS256 assertion exchanged at the token URI, cached until
shortly before it expires). When FCM says UNAUTHENTICATED, a token provider
that can fetch a new token is asked to, and the message is sent once more.

Errors are `{"error": {"code", "message", "status", "details": [{"@type":
"...FcmError", "errorCode"}]}}`, keyed on `errorCode`, else on `status` (ERRORS).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson

from pipeline.exceptions import (
    ConfigError,
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers.base import Accepted, Message, SingleSendProvider
from pipeline.providers.errors import HTTP_STATUSES, ErrorTable, http_keys
from pipeline.providers.repeat import repeat_key
from pipeline.providers.transport import Answer, HttpCall, retry_after

__all__ = [
    "ERRORS",
    "JWT_BEARER",
    "MAX_PAYLOAD_BYTES",
    "NAME",
    "SCOPE",
    "TOKEN_ERRORS",
    "Fcm",
    "ServiceAccountToken",
    "StaticToken",
    "TokenProvider",
    "classify",
    "fcm_error_code",
    "payload_size",
]

NAME = "fcm"
MAX_PAYLOAD_BYTES = 4096
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

ERRORS = ErrorTable(
    NAME,
    {
        "UNREGISTERED": RecipientUnreachable,  # the app was uninstalled: drop the token
        "INVALID_ARGUMENT": InvalidData,
        "THIRD_PARTY_AUTH_ERROR": ProviderAuthError,  # APNs or web push credentials
        "SENDER_ID_MISMATCH": ProviderAuthError,
        "UNAUTHENTICATED": ProviderAuthError,  # our OAuth token
        "PERMISSION_DENIED": ProviderAuthError,
        "QUOTA_EXCEEDED": RateLimited,
        "RESOURCE_EXHAUSTED": RateLimited,
        "UNAVAILABLE": TransientError,
        "INTERNAL": TransientError,
        **HTTP_STATUSES,
    },
    notes={"UNREGISTERED": "the push token is no longer registered"},
)
# The OAuth token exchange: busy or failing is transient, any other refusal is ours.
TOKEN_ERRORS = ErrorTable(
    NAME, {"HTTP 429": TransientError, "HTTP 5xx": TransientError}, otherwise=ProviderAuthError
)


class TokenProvider(ABC):
    """Where the adapter gets its OAuth2 access token."""

    @abstractmethod
    async def __call__(self) -> str:
        """A valid access token."""

    def invalidate(self) -> bool:
        """FCM rejected the token: forget it. True when the next call fetches a new one."""
        return False


class StaticToken(TokenProvider):
    """An access token obtained elsewhere (or the simulator's fixed token)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def __call__(self) -> str:
        return self.token


class ServiceAccountToken(TokenProvider):
    """OAuth2 access tokens for a Google service account (RFC 7523 JWT-bearer grant).

    Signs `{iss: client_email, scope, aud: token_url, iat, exp}` with the key's
    RS256 private key, posts it to the token URL, and caches the access token
    until `margin_s` before `expires_in` runs out. Concurrent callers share one
    exchange.
    """

    def __init__(
        self,
        path: str | Path,
        token_url: str | None,
        session: aiohttp.ClientSession,
        *,
        scope: str = SCOPE,
        lifetime_s: int = 3600,
        margin_s: float = 60.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            info = orjson.loads(Path(path).read_bytes())
            self.client_email = str(info["client_email"])
            self.private_key = str(info["private_key"])
            self.key_id = str(info.get("private_key_id") or "")
            self.token_url = token_url or str(info["token_uri"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"service-account file {path}: {exc!r}") from exc
        self.http = HttpCall(session, NAME, timeout)
        self.scope = scope
        self.lifetime_s = lifetime_s
        self.margin_s = margin_s
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def assertion(self, now: float) -> str:
        claims = {
            "iss": self.client_email,
            "scope": self.scope,
            "aud": self.token_url,
            "iat": int(now),
            "exp": int(now) + self.lifetime_s,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        try:
            return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ProviderAuthError(
                f"cannot sign the assertion: {exc}", provider=NAME, code="assertion"
            ) from exc

    def invalidate(self) -> bool:
        """Forget the cached token (FCM rejected it): the next call fetches a new one."""
        self._token = None
        return True

    async def __call__(self) -> str:
        async with self._lock:
            if self._token and self.clock() < self._expires_at - self.margin_s:
                return self._token
            now = self.clock()
            form = {"grant_type": JWT_BEARER, "assertion": self.assertion(now)}
            try:
                answer = await self.http.post(self.token_url, data=form)
            except ProviderTimeout as exc:  # no push was sent: nothing is in doubt
                raise ProviderTimeout(
                    f"token exchange: {exc}", provider=exc.provider, code=exc.code, in_doubt=False
                ) from exc
            doc = answer.json
            if answer.status == 200 and doc.get("access_token"):
                self._token = str(doc["access_token"])
                self._expires_at = now + float(str(doc.get("expires_in", 3600)))
                return self._token
            raise TOKEN_ERRORS.error(
                "oauth",
                f"token exchange {answer.status}: {doc.get('error', '')}",
                keys=http_keys(answer.status),
                retry_after=answer.retry_after,
            )


class Fcm(SingleSendProvider):
    name = NAME
    channel = "push"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        project_id: str,
        token_provider: TokenProvider,
        timeout: float = 30.0,
    ) -> None:
        self.http = HttpCall(session, self.name, timeout)
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self.token_provider = token_provider

    def payload(self, message: Message) -> dict[str, Any]:
        notification = {"body": message.text}
        if message.subject:
            notification = {"title": message.subject, **notification}
        key = repeat_key(message)  # the same for a resend: the device shows one
        return {
            "token": message.to,
            "notification": notification,
            # The template's data, then ours: a template key of the same name cannot
            # stand in for them. FCM v1 takes string values only.
            "data": {
                **{str(k): str(v) for k, v in message.data.items()},
                "messageId": message.message_id,
                "tenant": message.tenant,
            },
            "android": {"notification": {"tag": key}},
            "apns": {"headers": {"apns-collapse-id": key}},
        }

    async def send(self, message: Message) -> Accepted:
        payload = self.payload(message)
        size = payload_size(payload)
        if size > MAX_PAYLOAD_BYTES:
            raise InvalidData(
                f"payload of {size} bytes exceeds FCM's {MAX_PAYLOAD_BYTES}",
                provider=self.name, code="payload-too-large",
            )  # fmt: skip
        answer = await self._post(payload)
        rejected = answer.status == 401 and fcm_error_code(answer.json) == "UNAUTHENTICATED"
        if rejected and self.token_provider.invalidate():  # the token died early: once more
            answer = await self._post(payload)
        if answer.status == 200:
            return Accepted(self.name, str(answer.json.get("name", "")))
        raise classify(answer.status, answer.json, answer.headers)

    async def _post(self, payload: dict[str, Any]) -> Answer:
        headers = {"Authorization": f"Bearer {await self.token_provider()}"}
        return await self.http.post(self.url, json={"message": payload}, headers=headers)


def payload_size(payload: Mapping[str, Any]) -> int:
    """Bytes FCM counts against its 4096 limit: the notification and the data."""
    counted = {k: payload[k] for k in ("notification", "data") if k in payload}
    return len(orjson.dumps(counted))


def fcm_error_code(body: Mapping[str, Any]) -> str:
    """`details[].errorCode` of the FcmError, else the canonical `error.status`."""
    error = body.get("error")
    if not isinstance(error, Mapping):
        return ""
    for detail in error.get("details") or []:
        fcm_error = isinstance(detail, Mapping) and "FcmError" in str(detail.get("@type", ""))
        if fcm_error and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status") or "")


def classify(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> DeliveryError:
    """Map an FCM error to Herald's error classes, keyed on `errorCode` (else `status`)."""
    error = body.get("error")
    message = str(error.get("message", "")) if isinstance(error, Mapping) else ""
    return ERRORS.http_error(
        status, fcm_error_code(body), message, retry_after=retry_after(headers)
    )
