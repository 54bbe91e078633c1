"""The HTTP API's bodies as pydantic models: what a request must be, what an answer is.

They are the single description of the JSON on the wire: the ingress validates
request bodies with them (`pipeline.http.bodies`) and `/openapi.json` publishes
their JSON Schema (`pipeline.http.openapi`), so the published schema and the
checks cannot drift. NotificationRequest mirrors `schemas/NotificationRequest.avsc`
field for field (`tests/unit/test_http_models.py` holds them together); rules that
are not shape (template known, variables present, a contact point, consent) stay in
`pipeline.domain`, shared with requests that arrive over Kafka.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from pipeline.domain.validation import E164_RE, EMAIL_RE, ID_RE
from pipeline.exceptions import ValidationError

__all__ = [
    "Accepted",
    "Attempt",
    "AttemptOutcome",
    "Change",
    "Channel",
    "DateTime",
    "FieldError",
    "Health",
    "IdempotencyConflictProblem",
    "Mode",
    "NotificationRequest",
    "NotificationState",
    "OptedOutProblem",
    "Priority",
    "Problem",
    "QuotaProblem",
    "Ready",
    "Recipient",
    "Reservation",
    "Scalar",
    "Status",
    "StoredPreferences",
    "ValidationProblem",
    "WebhookAccepted",
]

Priority = Literal["high", "standard", "marketing"]
Channel = Literal["email", "sms", "whatsapp", "push"]
Mode = Literal["fallback", "all"]
Status = Literal[
    "PENDING", "SCHEDULED", "PROCESSING", "SENT", "DELIVERED", "BOUNCED", "RETRY",
    "FAILED", "DLQ", "BLOCKED", "CANCELLED", "OPENED", "CLICKED",
]  # fmt: skip
# How one attempt ended (`pipeline.domain.statuses.AttemptOutcome`): its status, or FALLBACK.
AttemptOutcome = Literal["SENT", "RETRY", "FALLBACK", "FAILED", "DLQ"]
# Avro `long`: a template variable outside it could not be written to the topic.
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]  # RFC 3339


def _scalar(value: Any) -> Any:
    """A template variable: Avro's ["null", "boolean", "long", "double", "string"]."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float) and LONG_MIN <= value <= LONG_MAX:
        return value
    raise PydanticCustomError("scalar", "values must be scalars: text, a 64-bit number, a boolean")


# One type (not a union) so that a bad value is one error, not one per member.
Scalar = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema(
        {"type": ["string", "number", "boolean", "null"], "minimum": LONG_MIN, "maximum": LONG_MAX}
    ),
]


class _Body(BaseModel):
    """A request body: strict JSON types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Recipient(_Body):
    """Who is notified; at least one contact point is needed (checked with the template)."""

    userId: str = Field(pattern=ID_RE.pattern, description="The tenant's id for the user.")
    email: str | None = Field(None, pattern=EMAIL_RE.pattern)
    phone: str | None = Field(None, pattern=E164_RE.pattern, description="E.164, for SMS.")
    whatsapp: str | None = Field(None, pattern=E164_RE.pattern, description="E.164.")
    pushTokens: list[Annotated[str, Field(min_length=1)]] | None = None
    locale: str | None = Field(
        None,
        description="BCP 47, e.g. `es-MX`: tried as given, then by its language (`es`); "
        "without one the tenant's default.",
    )
    timezone: str | None = Field(
        None,
        description="IANA, e.g. `Europe/Madrid`: dates and times are shown in it (UTC without "
        "one); an unknown zone is 422.",
    )


class NotificationRequest(_Body):
    """A request to notify one recipient (the Kafka record's fields; the tenant is the token's)."""

    # The README's first example: what a reader tries first must be accepted as shown.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recipient": {"userId": "u1", "email": "ana@example.com", "locale": "es"},
                    "template": "booking-confirmation",
                    "data": {"name": "Ana", "bookingRef": "ABC123", "flight": "IB3456",
                             "date": "2026-12-01", "origin": "MAD", "destination": "JFK"},
                }
            ]
        }
    )  # fmt: skip

    messageId: str | None = Field(
        None,
        pattern=ID_RE.pattern,
        description="Client-chosen id (idempotency); generated when absent.",
    )
    tenant: str | None = Field(
        None, description="The tenant comes from the token; if given it must be the same."
    )
    recipient: Recipient
    template: str = Field(min_length=1, description="A template id, e.g. `booking-confirmation`.")
    data: dict[str, Scalar] = Field(
        default_factory=dict, description="Template variables; scalar values only."
    )
    priority: Priority = "standard"
    channels: list[Channel] | None = Field(
        None,
        min_length=1,
        json_schema_extra={"uniqueItems": True},
        description="Explicit channel order; absent: the priority's chain.",
    )
    mode: Mode | None = Field(None, description="`fallback` (default) or `all` channels.")
    sendAt: DateTime | None = Field(None, description="RFC 3339, with a `Z` or an offset.")
    webhookUrl: Annotated[str, Field(json_schema_extra={"format": "uri"})] | None = Field(
        None, description="Each state change is POSTed here (signed, see the README)."
    )
    metadata: dict[str, str] = Field(default_factory=dict)

    def to_record(self, tenant: str, message_id: str) -> dict[str, Any]:
        """The NotificationRequest record for the requests topic."""
        if self.tenant is not None and self.tenant != tenant:
            raise ValidationError(
                "invalid notification request",
                [{"field": "tenant", "message": "the tenant comes from the token"}],
            )
        return {**self.model_dump(), "tenant": tenant, "messageId": message_id}


class Accepted(BaseModel):
    messageId: str
    status: Literal["PENDING"]


class Attempt(BaseModel):
    channel: str | None
    provider: str | None
    attempt: int | None
    outcome: AttemptOutcome = Field(
        description="SENT, RETRY (the next attempt goes to the channel's next provider), "
        "FALLBACK (not reachable on this channel: the next channel follows), FAILED or DLQ."
    )
    error: str | None
    providerMessageId: str | None
    at: DateTime
    segments: int | None = Field(None, description="SMS: the segments the text went out in.")


class Change(BaseModel):
    status: Status
    at: DateTime
    channel: str | None = None
    provider: str | None = None
    attempt: int | None = None
    error: str | None = None
    providerMessageId: str | None = None
    inDoubt: bool = False


class NotificationState(BaseModel):
    """A message's state: folded from its status changes, newest last in `history`."""

    messageId: str
    userId: str
    status: Status | None = Field(
        description="The delivery state; OPENED and CLICKED only in history."
    )
    channel: str | None = Field(description="The channel that sent it, once SENT.")
    provider: str | None
    template: str | None
    priority: str | None
    locale: str | None = Field(None, description="The locale it was rendered in.")
    variant: str | None = Field(None, description="The A/B variant it was rendered in.")
    templateVersion: int | None = Field(
        None, description="The version of the template it was rendered from."
    )
    attempts: list[Attempt]
    history: list[Change]
    createdAt: DateTime
    updatedAt: DateTime
    inDoubt: bool = Field(False, description="A crash left a send in doubt (see Guarantees).")


class WebhookAccepted(BaseModel):
    accepted: int = Field(ge=0, description="Events published to herald.provider.events.")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]


class Reservation(BaseModel):
    """What a messageId's reservation makes of a body (`pipeline.domain.idempotency.Seen`)."""

    messageId: str
    seen: Literal["new", "replay", "duplicate", "conflict"]


class StoredPreferences(BaseModel):
    """A user's preferences record as the worker that holds it stores it (the Avro
    UserPreferences), or null when none is stored: consent is then the default."""

    userId: str
    preferences: dict[str, Any] | None


class Problem(BaseModel):
    """An error, as RFC 9457 `application/problem+json`."""

    type: Annotated[str, Field(json_schema_extra={"format": "uri-reference"})]
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = ""


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `recipient.email`.")
    message: str


class ValidationProblem(Problem):
    errors: list[FieldError]


class OptedOutProblem(Problem):
    rule: str = Field(description="The consent rule that refused it, e.g. `opted-out-all`.")
    messageId: str


class IdempotencyConflictProblem(Problem):
    messageId: str = Field(description="The id already taken by another body.")


class QuotaProblem(Problem):
    retryAfter: int = Field(ge=1, description="Seconds until a request is admitted again.")
