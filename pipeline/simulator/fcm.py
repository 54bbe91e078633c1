"""Firebase Cloud Messaging HTTP v1, simulated, with its OAuth token endpoint.

`POST /v1/projects/{project}/messages:send` with a Bearer token: the fixed
FCM_ACCESS_TOKEN, or one this simulator issued at `POST /token` and that has
not expired. 200 carries `name` (`projects/{p}/messages/{id}`); errors are
`{"error": {"code", "message", "status", "details": [FcmError]}}`. Faults:
`5xx` is 500 INTERNAL, `429` is 429 QUOTA_EXCEEDED with Retry-After. The
notification and data may take 4096 bytes. FCM posts no webhook.

Conventions: a token starting `unregistered-` is UNREGISTERED (404), one
starting `invalid-` (or empty, or with spaces) INVALID_ARGUMENT. An
`apns-collapse-id` over 64 bytes is INVALID_ARGUMENT too (APNs refuses it as
BadCollapseId; that FCM answers it so, synchronously, is unconfirmed). FCM has
no idempotency key, so a repeated request is recorded again; the `android` and
`apns` blocks are recorded with the message, so a test sees the tag and the
collapse id a resend shares with its first call.

`POST /token` is the JWT-bearer grant of a service account: the assertion's
RS256 signature is verified with the key of FCM_SERVICE_ACCOUNT_FILE when the
simulator has that setting; without it, only the assertion's claims are.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from pipeline.domain.channel_limits import is_data_key_allowed
from pipeline.settings import Settings
from pipeline.simulator.state import FaultKind, SimProvider
from pipeline.simulator.wire import bearer, json_response, state_of, take_fault

__all__ = [
    "FCM_ERROR",
    "JWT_BEARER",
    "MAX_COLLAPSE_ID",
    "MAX_PAYLOAD",
    "NAME",
    "SCOPES",
    "SIM",
    "TOKEN_LIFETIME",
    "oauth_token",
    "send",
]

NAME = "fcm"
MAX_PAYLOAD = 4096
MAX_COLLAPSE_ID = 64  # bytes, APNs' limit
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3599  # seconds, as Google issues them


def _error(
    status: int,
    canonical: str,
    message: str,
    error_code: str | None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
    if error_code:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": error_code}]
    return json_response({"error": error}, status, headers)


async def send(request: web.Request) -> web.Response:
    state = state_of(request)
    settings = state.settings
    token = bearer(request)
    valid = token == settings.fcm_access_token or state.fcm_tokens.get(token, 0) > time.time()
    if not token or not valid:
        return _error(
            401, "UNAUTHENTICATED", "Request had invalid authentication credentials. "
            "Expected OAuth 2 access token, login cookie or other valid authentication "
            "credential.", None,
        )  # fmt: skip
    if request.match_info["project"] != settings.fcm_project_id:
        return _error(404, "NOT_FOUND", "Requested entity was not found.", None)
    failure = await take_fault(request, NAME)
    if failure is not None and failure.kind is FaultKind.SERVER_ERROR:
        return _error(500, "INTERNAL", "Internal error encountered.", "INTERNAL")
    if failure is not None and failure.kind is FaultKind.RATE_LIMITED:
        return _error(
            429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages.",
            "QUOTA_EXCEEDED", {"Retry-After": str(failure.retry_after)},
        )  # fmt: skip
    try:
        body = orjson.loads(await request.read())
        message = body["message"]
        push_token = str(message.get("token") or "")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", None)
    problem = _data_problem(message.get("data"))
    if problem:
        return _error(400, "INVALID_ARGUMENT", problem, "INVALID_ARGUMENT")
    counted = {k: message[k] for k in ("notification", "data") if k in message}
    if len(orjson.dumps(counted)) > MAX_PAYLOAD:
        return _error(400, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT")
    if not push_token or push_token.startswith("invalid-") or any(c.isspace() for c in push_token):
        return _error(
            400, "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT",
        )  # fmt: skip
    if len(_collapse_id(message).encode()) > MAX_COLLAPSE_ID:
        return _error(
            400, "INVALID_ARGUMENT", "apns-collapse-id exceeds 64 bytes (BadCollapseId)",
            "INVALID_ARGUMENT",
        )  # fmt: skip
    if push_token.startswith("unregistered-"):
        return _error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    message_number = f"0:{time.time_ns()}%{uuid.uuid4().hex[:16]}"
    name = f"projects/{settings.fcm_project_id}/messages/{message_number}"
    content = {"notification": message.get("notification"), "data": message.get("data")}
    content |= {k: message[k] for k in ("android", "apns") if k in message}
    state.record(NAME, "push", push_token, content, name)
    return json_response({"name": name})


def _data_problem(data: Any) -> str | None:
    """What FCM v1 objects to in `message.data`: a value that is not a string, or a
    reserved key (`from`, `message_type`, anything starting `google` or `gcm`)."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        return "Invalid value at 'message.data' (Map), not an object"
    for key, value in data.items():
        if not isinstance(value, str):
            return f"Invalid value at 'message.data[{key}].value' (TYPE_STRING)"
        if not is_data_key_allowed(key):
            return f"Invalid data payload key: {key} is a reserved key"
    return None


def _collapse_id(message: Mapping[str, Any]) -> str:
    apns = message.get("apns")
    headers = apns.get("headers") if isinstance(apns, Mapping) else None
    return str(headers.get("apns-collapse-id") or "") if isinstance(headers, Mapping) else ""


async def oauth_token(request: web.Request) -> web.Response:
    state = state_of(request)
    form = await request.post()
    if form.get("grant_type") != JWT_BEARER:
        return json_response(
            {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400
        )
    problem = _assertion_problem(state.settings, str(form.get("assertion", "")))
    if problem:
        return json_response({"error": "invalid_grant", "error_description": problem}, 400)
    token = "ya29.sim-" + secrets.token_urlsafe(32)
    state.fcm_tokens[token] = time.time() + TOKEN_LIFETIME
    return json_response(
        {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}
    )


def _assertion_problem(settings: Settings, assertion: str) -> str | None:
    """What Google's token endpoint would refuse in this assertion, if anything."""
    path = settings.fcm_service_account_file
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
    if not set(str(claims["scope"]).split()) & set(SCOPES):
        return "Invalid JWT: no FCM scope"
    return None


def _public_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


SIM = SimProvider(
    names=(NAME,),
    routes=(
        web.post("/v1/projects/{project}/messages:send", send),
        web.post("/token", oauth_token),
    ),
)
