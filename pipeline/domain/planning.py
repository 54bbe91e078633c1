"""The ingest stage as one plain function: validate, consent, render, route.

ingest, compliance, enrich and route share the key `tenant:userId`, so they
run in sequence inside one agent instead of paying a Kafka hop each (see the
README's topology). `plan_request` decides; the agent only does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.channel_limits import check_channel_content
from pipeline.domain.compliance import split_by_consent
from pipeline.domain.limits import Limits, size_bound
from pipeline.domain.profiles import resolve
from pipeline.domain.records import audit_record, dispatch_record, status_record
from pipeline.domain.routing import contact_point, lane_for, route_channels
from pipeline.domain.templates import Template, TemplateCatalog
from pipeline.domain.validation import check_request
from pipeline.exceptions import (
    ContentOverLimit,
    RenderedTooLarge,
    RequestTooLarge,
    TemplateDataError,
    ValidationError,
)

__all__ = ["Plan", "check_fits", "known_rendering", "plan_request", "render_dispatch"]


@dataclass
class Plan:
    """What the ingest agent emits for one request."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    dispatches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # ch, lane
    audits: list[dict[str, Any]] = field(default_factory=list)
    dead_letter_reason: str | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        """Taken into the pipeline (dispatched, or decided like BLOCKED): it reserves its id."""
        return self.dead_letter_reason is None


def plan_request(
    request: Mapping[str, Any],
    original: bytes,
    *,
    templates: TemplateCatalog,
    preferences: Mapping[str, Any] | None,
    available: Collection[str],
    now: datetime | None = None,
    limits: Limits | None = None,
    profile: Mapping[str, Any] | None = None,
    encode: Callable[[Mapping[str, Any]], bytes] | None = None,
) -> Plan:
    """Plan one decoded NotificationRequest (its messageId already set).

    With `limits`, a request or a rendered dispatch that would not fit its topic is
    rejected with reason `too-large` (a DLQ status and a dead letter, never a produce
    the broker refuses). With the user's `profile`, the recipient is filled from it where
    the request has no value (`pipeline.domain.profiles.resolve`) and its attributes are
    the template's `user`; the dispatches then carry that resolved request, made bytes
    by `encode` (a fallback channel is rendered from it: the profile's phone, locale).
    """
    plan = Plan()
    resolved = resolve(request, profile)
    if profile is not None and encode is not None:
        request, original = resolved.request, encode(resolved.request)
    else:
        request = resolved.request
    try:
        if limits is not None and len(original) > limits.request_bytes:
            raise _request_too_large(len(original), limits)
        template = check_request(request, templates, now=now or datetime.now(UTC))
    except RequestTooLarge as exc:
        return _reject(plan, request, "too-large", _describe(exc))
    except ValidationError as exc:
        return _reject(plan, request, "invalid", _describe(exc))

    channels = route_channels(request, available)
    if not channels:
        return _reject(plan, request, "no-channel", "no reachable channel for this recipient")

    known = known_rendering(template, request)
    consent = split_by_consent(preferences, channels, request["priority"])
    for channel, decision in consent.blocked:
        plan.audits.append(audit_record(request, "BLOCKED", decision.rule, channel))
    allowed = consent.allowed
    if consent.refused_everywhere:
        rule = plan.audits[0]["rule"]
        plan.statuses.append(status_record(request, "BLOCKED", error=rule, rendered=known))
        return plan

    mode = request.get("mode") or "fallback"
    targets = allowed if mode == "all" else allowed[:1]
    lane = lane_for(request["priority"])
    try:
        for channel in targets:
            remaining = [] if mode == "all" else allowed[1:]
            dispatch = render_dispatch(
                request, channel, templates=templates, remaining=remaining, original=original,
                limits=limits, profile_locale=resolved.profile_locale, user=resolved.user,
            )  # fmt: skip
            plan.dispatches.append((channel, lane, dispatch))
    except RenderedTooLarge as exc:
        return _reject(Plan(), request, "too-large", _describe(exc))
    except ValidationError as exc:
        return _reject(Plan(), request, "invalid", _describe(exc))
    first = plan.dispatches[0][2] if plan.dispatches else known
    plan.statuses.append(status_record(request, "PENDING", rendered=first))
    return plan


def known_rendering(template: Template, request: Mapping[str, Any]) -> dict[str, Any]:
    """What is known of a request's rendering before it is rendered: its variant and the
    template's version (the locale waits for the profile, at ingest)."""
    user = (request.get("recipient") or {}).get("userId") or ""
    return {"variant": template.variant_for(str(request.get("tenant")), str(user)),
            "templateVersion": template.version}  # fmt: skip


def render_dispatch(
    request: Mapping[str, Any],
    channel: str,
    *,
    templates: TemplateCatalog,
    remaining: Sequence[str],
    original: bytes,
    history: Sequence[Mapping[str, Any]] = (),
    limits: Limits | None = None,
    profile_locale: str | None = None,
    user: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ChannelDispatch of `request` on `channel` (first attempt on that channel).

    The dispatch carries the original request (the next channel is rendered from it, and
    a dead letter from the send stage hands it back), so a dispatch holds the request's
    data about three times: in the request, the text and the html (escaped, up to 5x
    per `&`). With `limits`, a dispatch that would not fit raises RenderedTooLarge.
    A template with variants renders the variant of (tenant, userId, template, version),
    so the next channel of a fallback, a retry and a replay carry the same one. Content
    over what the channel's provider takes (`pipeline.domain.channel_limits`) raises
    ContentOverLimit, a ValidationError. The locale is the recipient's, else
    `profile_locale` (the user's profile), else the tenant's default; dates and times are
    shown in `recipient.timezone` (UTC without one). `user`: the profile's attributes.
    """
    recipient = request["recipient"]
    rendered = templates.render(
        request["template"], channel, request.get("data") or {}, recipient.get("locale"),
        profile_locale=profile_locale, timezone=recipient.get("timezone"),
        tenant=request["tenant"], user_id=recipient["userId"], user=user,
    )  # fmt: skip
    check_channel_content(rendered, message_id=request["messageId"], tenant=request["tenant"])
    to = contact_point(recipient, channel)
    if to is None:
        raise ValidationError(f"the recipient has no contact point for {channel}")
    dispatch = dispatch_record(
        request, rendered, to=to, remaining=remaining, original=original, history=history
    )
    if limits is not None:
        _check_dispatch(channel, size_bound(dispatch), limits)
    return dispatch


def _check_dispatch(channel: str, size: int, limits: Limits) -> None:
    if size > limits.rendered_bytes:
        raise RenderedTooLarge(
            f"the {channel} message renders to {size} bytes; at most "
            f"{limits.rendered_bytes} bytes fit a channel lane",
            [{"field": "data", "message": f"renders to {size} bytes for {channel}; "
              f"at most {limits.rendered_bytes} bytes fit"}],
        )  # fmt: skip


def check_fits(
    request: Mapping[str, Any],
    *,
    templates: TemplateCatalog,
    limits: Limits,
    channels: Sequence[str],
    encoded_size: int | None = None,
    profile: Mapping[str, Any] | None = None,
) -> None:
    """Raise RequestTooLarge or RenderedTooLarge when `request` would not fit Kafka.

    For the HTTP door: the same limits `plan_request` applies at ingest, checked before
    the 202. Renders every channel the request may use (fallback keeps the request).
    Content over a channel's provider limits raises ContentOverLimit (422) too. With the
    user's `profile`, rendered as ingest will render it (its contact points, locale, `user`).
    """
    resolved = resolve(request, profile)
    request = resolved.request
    size = size_bound(request) if encoded_size is None else encoded_size
    if size > limits.request_bytes:
        raise _request_too_large(size, limits)
    for i, channel in enumerate(channels):
        try:
            dispatch = render_dispatch(
                request, channel, templates=templates, remaining=channels[i + 1 :], original=b"",
                profile_locale=resolved.profile_locale, user=resolved.user,
            )  # fmt: skip
        except (ContentOverLimit, TemplateDataError):
            raise  # the provider would refuse it, or no channel can show it: 422
        except ValidationError:
            continue  # no content or contact point here: not a size question
        _check_dispatch(channel, size_bound(dispatch) + size, limits)  # + the request inside


def _request_too_large(size: int, limits: Limits) -> RequestTooLarge:
    message = f"the request is {size} bytes encoded; at most {limits.request_bytes} bytes fit"
    return RequestTooLarge(message, [{"field": "body", "message": message}])


def _reject(plan: Plan, request: Mapping[str, Any], reason: str, error: str) -> Plan:
    plan.dead_letter_reason = reason
    plan.error = error
    if _has_ids(request):
        plan.statuses.append(status_record(request, "DLQ", error=error))
    return plan


def _has_ids(request: Mapping[str, Any]) -> bool:
    recipient = request.get("recipient") or {}
    return all(
        isinstance(v, str) and v
        for v in (request.get("messageId"), request.get("tenant"), recipient.get("userId"))
    )


def _describe(exc: ValidationError) -> str:
    if not exc.errors:
        return str(exc)
    return f"{exc}: " + "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
