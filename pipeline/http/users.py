"""`/v1/users/{userId}/...`: what the workers keep about a user, read where it lives.

Today one internal route: the user's stored preferences, which the door of a worker
that does not own the user's partition asks of the one that does before it answers a
POST (the opted-out check, `pipeline.http.routing`). The caller's token is checked
again by the owner, and only that tenant's record is read.
"""

from __future__ import annotations

from aiohttp import web

from pipeline.domain.validation import ID_RE
from pipeline.exceptions import ValidationError
from pipeline.http.context import Call, Context, json_response
from pipeline.http.routing import was_forwarded

__all__ = ["get_consent"]


async def get_consent(ctx: Context, call: Call) -> web.Response:
    """The user's preferences record as stored here (internal: asked by another worker)."""
    request = call.request
    user_id = request.match_info["userId"]
    if not ID_RE.fullmatch(user_id):
        why = "must be 1 to 128 letters, digits or ._:@-"
        raise ValidationError(f"userId {why}", [{"field": "userId", "message": why}])
    stored = await ctx.door.preferences(
        request.headers.get("Authorization", ""), call.caller.tenant, user_id,
        forwarded=was_forwarded(request.headers),
    )  # fmt: skip
    return json_response({"userId": user_id, "preferences": stored})
