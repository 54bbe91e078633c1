"""Firebase Cloud Messaging HTTP v1, the push provider.

`POST {base}/v1/projects/{project}/messages:send` with `Authorization: Bearer
<OAuth2 access token>` and `{"message": {"token", "notification": {"title",
"body"}, "data": {"messageId", "tenant"}}}`. 200 carries `name`
(`projects/{p}/messages/{id}`), the provider message id. FCM has no delivery
webhook.

The access token comes from an async `token_provider`: `StaticToken` (a token
issued elsewhere) or `ServiceAccountToken`, the OAuth2 JWT-bearer flow of a
service-account key (RS256 assertion exchanged at the token URI, cached until
shortly before it expires).

Errors are `{"error": {"code", "message", "status", "details": [{"@type":
"...FcmError", "errorCode"}]}}`, keyed on `errorCode`, else on `status`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
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
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers._common import response_json, retry_after, transport_error
from pipeline.providers.base import Accepted, Message

MAX_PAYLOAD_BYTES = 4096
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

RATE_LIMITED = frozenset({"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})
TRANSIENT = frozenset({"UNAVAILABLE", "INTERNAL"})
AUTH = frozenset(
    {"THIRD_PARTY_AUTH_ERROR", "SENDER_ID_MISMATCH", "UNAUTHENTICATED", "PERMISSION_DENIED"}
)

TokenProvider = Callable[[], Awaitable[str]]


class StaticToken:
    """An access token obtained elsewhere (or the simulator's fixed token)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def __call__(self) -> str:
        return self.token


class ServiceAccountToken:
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
        self.session = session
        self.scope = scope
        self.lifetime_s = lifetime_s
        self.margin_s = margin_s
        self.timeout = aiohttp.ClientTimeout(total=timeout)
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
                f"cannot sign the assertion: {exc}", provider=Fcm.name, code="assertion"
            ) from exc

    def invalidate(self) -> None:
        """Forget the cached token (FCM rejected it): the next call fetches a new one."""
        self._token = None

    async def __call__(self) -> str:
        async with self._lock:
            if self._token and self.clock() < self._expires_at - self.margin_s:
                return self._token
            now = self.clock()
            form = {"grant_type": JWT_BEARER, "assertion": self.assertion(now)}
            try:
                async with self.session.post(
                    self.token_url, data=form, timeout=self.timeout
                ) as resp:
                    doc = await response_json(resp)
                    if resp.status == 200 and doc.get("access_token"):
                        self._token = str(doc["access_token"])
                        self._expires_at = now + float(str(doc.get("expires_in", 3600)))
                        return self._token
                    detail = f"token exchange {resp.status}: {doc.get('error', '')}"
                    if resp.status == 429 or resp.status >= 500:
                        raise TransientError(
                            detail, provider=Fcm.name, code="oauth",
                            retry_after=retry_after(resp.headers),
                        )  # fmt: skip
                    raise ProviderAuthError(detail, provider=Fcm.name, code="oauth")
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise transport_error(Fcm.name, exc) from exc


class Fcm:
    name = "fcm"
    channel = "push"
    supports_batch = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        project_id: str,
        token_provider: TokenProvider,
        timeout: float = 30.0,
    ) -> None:
        self.session = session
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self.token_provider = token_provider
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def payload(self, message: Message) -> dict[str, Any]:
        notification = {"body": message.text}
        if message.subject:
            notification = {"title": message.subject, **notification}
        return {
            "token": message.to,
            "notification": notification,
            "data": {"messageId": message.message_id, "tenant": message.tenant},
        }

    async def send(self, message: Message) -> Accepted:
        payload = self.payload(message)
        size = payload_size(payload)
        if size > MAX_PAYLOAD_BYTES:
            raise InvalidData(
                f"payload of {size} bytes exceeds FCM's {MAX_PAYLOAD_BYTES}",
                provider=self.name, code="payload-too-large",
            )  # fmt: skip
        status, doc, headers = await self._post(payload, await self.token_provider())
        invalidate = getattr(self.token_provider, "invalidate", None)
        if status == 401 and fcm_error_code(doc) == "UNAUTHENTICATED" and callable(invalidate):
            invalidate()  # the cached OAuth token died early: fetch a new one, once
            status, doc, headers = await self._post(payload, await self.token_provider())
        if status == 200:
            return Accepted(self.name, str(doc.get("name", "")))
        raise classify(status, doc, headers)

    async def _post(
        self, payload: dict[str, Any], token: str
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self.session.post(
                self.url, json={"message": payload}, headers=headers, timeout=self.timeout
            ) as resp:
                return resp.status, await response_json(resp), resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self.name, exc) from exc


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
    name = Fcm.name
    code = fcm_error_code(body)
    error = body.get("error")
    message = str(error.get("message", ""))[:300] if isinstance(error, Mapping) else ""
    key = code or str(status)
    detail = f"{key}: {message}"
    if code == "UNREGISTERED":
        return RecipientUnreachable(
            f"{key}: the push token is no longer registered", provider=name, code=key
        )
    if code == "INVALID_ARGUMENT":
        return InvalidData(detail, provider=name, code=key)
    if code in AUTH:
        return ProviderAuthError(detail, provider=name, code=key)
    if code in RATE_LIMITED or status == 429:
        return RateLimited(detail, provider=name, code=key, retry_after=retry_after(headers))
    if code in TRANSIENT or status >= 500:
        return TransientError(detail, provider=name, code=key, retry_after=retry_after(headers))
    if status in (401, 403):
        return ProviderAuthError(detail, provider=name, code=key)
    return InvalidData(detail, provider=name, code=key)
