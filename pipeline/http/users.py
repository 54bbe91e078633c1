"""`/v1/users/{userId}/...`: what the workers keep about a user, read where it lives.

A user's preferences and profile live in the tables of the worker that owns the user's
partition (`pipeline.http.routing`). The profile is written here (PUT: produced to
`herald.users.profiles`, acknowledged, then answered) and read where it lives (GET),
once the profiles stage has folded what the topic held at the GET, so a GET after a
PUT's 200 sees it. Two internal routes answer another worker's door before it answers
a POST: the user's stored preferences (the opted-out check) and profile (a request
naming only its user). The caller's token is checked again by the owner, and only that
tenant's records are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pipeline.clock import now
from pipeline.domain.ids import user_key
from pipeline.domain.profiles import check_profile, profile_record, public_profile
from pipeline.domain.validation import ID_RE
from pipeline.exceptions import ValidationError
from pipeline.http.context import Call, Context, json_response
from pipeline.http.problems import NOT_FOUND
from pipeline.http.profile_models import ProfileBody
from pipeline.http.routing import was_forwarded

if TYPE_CHECKING:
    from pipeline.http.door import ProfileRoute

__all__ = ["get_consent", "get_profile", "get_recipient", "put_profile"]


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["userId"]
    if not ID_RE.fullmatch(user_id):
        why = "must be 1 to 128 letters, digits or ._:@-"
        raise ValidationError(f"userId {why}", [{"field": "userId", "message": why}])
    return user_id


async def get_consent(ctx: Context, call: Call) -> web.Response:
    """The user's preferences record as stored here (internal: asked by another worker)."""
    request = call.request
    user_id = _user_id(request)
    stored = await ctx.door.preferences(
        request.headers.get("Authorization", ""), call.caller.tenant, user_id,
        forwarded=was_forwarded(request.headers),
    )  # fmt: skip
    return json_response({"userId": user_id, "preferences": stored})


async def put_profile(ctx: Context, call: Call) -> web.Response:
    """Replace the user's profile: produced (acknowledged), then answered as stored."""
    user_id, tenant = _user_id(call.request), call.caller.tenant
    body: ProfileBody = call.body
    fields = body.fields()
    check_profile(fields)
    record = profile_record(tenant, user_id, fields, now())
    await ctx.door.produce("profiles", [(user_key(tenant, user_id), record)])
    return json_response(public_profile(record))


async def get_profile(ctx: Context, call: Call) -> web.Response:
    """The user's profile where it lives; another tenant's user is as absent as none."""
    user_id, stored = await _stored_profile(ctx, call, "profile")
    if stored is None:
        return NOT_FOUND.answer(f"no profile for user {user_id}")
    return json_response(public_profile(stored))


async def get_recipient(ctx: Context, call: Call) -> web.Response:
    """The user's profile as stored here, or null (internal: asked by another door before
    it answers a POST naming only the user)."""
    user_id, stored = await _stored_profile(ctx, call, "recipient")
    return json_response({"userId": user_id, "profile": stored})


async def _stored_profile(
    ctx: Context, call: Call, via: ProfileRoute
) -> tuple[str, Mapping[str, Any] | None]:
    request = call.request
    user_id = _user_id(request)
    stored = await ctx.door.profile(
        request.headers.get("Authorization", ""), call.caller.tenant, user_id,
        forwarded=was_forwarded(request.headers), via=via,
    )  # fmt: skip
    return user_id, stored
