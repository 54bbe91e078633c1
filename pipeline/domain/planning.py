"""The ingest stage as one plain function: validate, consent, render, route.

ingest, compliance, enrich and route share the key `tenant:userId`, so they
run in sequence inside one agent instead of paying a Kafka hop each (see the
README's topology). `plan_request` decides; the agent only does the I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.compliance import split_by_consent
from pipeline.domain.records import audit_record, dispatch_record, status_record
from pipeline.domain.routing import contact_point, lane_for, route_channels
from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.validation import check_request
from pipeline.exceptions import ValidationError

__all__ = ["Plan", "plan_request", "render_dispatch"]


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
) -> Plan:
    """Plan one decoded NotificationRequest (its messageId already set)."""
    plan = Plan()
    try:
        check_request(request, templates, now=now or datetime.now(UTC))
    except ValidationError as exc:
        return _reject(plan, request, "invalid", _describe(exc))

    channels = route_channels(request, available)
    if not channels:
        return _reject(plan, request, "no-channel", "no reachable channel for this recipient")

    consent = split_by_consent(preferences, channels, request["priority"])
    for channel, decision in consent.blocked:
        plan.audits.append(audit_record(request, "BLOCKED", decision.rule, channel))
    allowed = consent.allowed
    if consent.refused_everywhere:
        plan.statuses.append(status_record(request, "BLOCKED", error=plan.audits[0]["rule"]))
        return plan

    mode = request.get("mode") or "fallback"
    targets = allowed if mode == "all" else allowed[:1]
    lane = lane_for(request["priority"])
    try:
        for channel in targets:
            remaining = [] if mode == "all" else allowed[1:]
            dispatch = render_dispatch(
                request, channel, templates=templates, remaining=remaining, original=original
            )
            plan.dispatches.append((channel, lane, dispatch))
    except ValidationError as exc:
        return _reject(Plan(), request, "invalid", _describe(exc))
    plan.statuses.append(status_record(request, "PENDING"))
    return plan


def render_dispatch(
    request: Mapping[str, Any],
    channel: str,
    *,
    templates: TemplateCatalog,
    remaining: Sequence[str],
    original: bytes,
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ChannelDispatch of `request` on `channel` (first attempt on that channel)."""
    recipient = request["recipient"]
    rendered = templates.render(
        request["template"], channel, request.get("data") or {}, recipient.get("locale")
    )
    to = contact_point(recipient, channel)
    if to is None:
        raise ValidationError(f"the recipient has no contact point for {channel}")
    return dispatch_record(
        request, rendered, to=to, remaining=remaining, original=original, history=history
    )


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
