"""Every HTTP route, declared once: the ingress registers them, `/openapi.json` describes them.

A route (`pipeline.http.operation.Operation`) names its method and path, its handler,
the scope its JWT needs (None: no JWT), the model its body must match, its answers and
the problems it may answer (those its declaration implies are added for it). Add a route
by adding an `Operation` to `operations()`; nothing else lists routes.
"""

from __future__ import annotations

from pipeline.domain.idempotency import FINGERPRINT_RE
from pipeline.domain.validation import ID_RE
from pipeline.http import notifications, receivers, service, templates_api, users
from pipeline.http.models import (
    Accepted,
    Health,
    NotificationRequest,
    NotificationState,
    Ready,
    Reservation,
    StoredPreferences,
    WebhookAccepted,
)
from pipeline.http.operation import Answer, Operation, Param, RawBody
from pipeline.http.problems import (
    BAD_TEMPLATE,
    IDEMPOTENCY_CONFLICT,
    INVALID,
    NOT_FOUND,
    NOT_READY,
    OPTED_OUT,
    REBALANCING,
    STATE_BEHIND,
    SUBSCRIPTION_REFUSED,
    WEBHOOK_OFF,
    WEBHOOK_UNSIGNED,
    WORKER_UNAVAILABLE,
)
from pipeline.http.profile_models import Profile, ProfileBody, StoredProfile
from pipeline.http.template_models import StoredTemplate, TemplateBody, TemplateListing
from pipeline.http.webhooks import WEBHOOK_PROVIDERS

__all__ = ["operations"]


def operations() -> tuple[Operation, ...]:
    """The route table, in the order the description lists it (built afresh: nothing shared)."""
    string = {"type": "string"}
    location = Param("Location", "header", "Where the message's state is read.", required=True)
    template_id = Param(
        "templateId",
        "path",
        "The template's id (the requests' `template`).",
        {"type": "string", "pattern": ID_RE.pattern},
        required=True,
    )
    user_id = Param("userId", "path", "The tenant's id for the user.",
                    {"type": "string", "pattern": ID_RE.pattern}, required=True)  # fmt: skip
    # SendGrid posts a JSON array, WhatsApp Cloud and Vonage an object, Twilio (and Vonage) a form.
    json_or_form = (
        ("application/json", {"type": ["object", "array"]}),
        ("application/x-www-form-urlencoded", {"type": "object", "additionalProperties": string}),
    )
    return (
        Operation(
            "POST", "/v1/notifications", notifications.post_notification,
            "Send a notification", "notifications",
            scope="notifications:send",
            body=NotificationRequest,
            metered=True,
            description=(
                "Produced to `herald.notifications.requests` and acknowledged by the broker "
                "before the 202. The same `messageId` (or `Idempotency-Key`) again with the "
                "same body answers the same 202 and sends nothing twice; with another body, "
                "409. An id is taken only by a request the pipeline accepted: after a "
                "request was dead-lettered as invalid, its corrected re-send is sent."
            ),
            params=(
                Param("Idempotency-Key", "header", "Names the message when it has no messageId."),
                Param("Prefer", "header", "`wait=N` (RFC 7240, N at most 30): answer with the "
                      "state once the message is sent or final, within N seconds."),
            ),
            answers=(
                Answer(202, "Accepted: the request is on Kafka.", Accepted, headers=(location,)),
                Answer(200, "With `Prefer: wait`: the message's state once it has an outcome.",
                       NotificationState, headers=(
                           location, Param("Preference-Applied", "header", "`wait=N`."))),
            ),
            problems=(OPTED_OUT, IDEMPOTENCY_CONFLICT, BAD_TEMPLATE),
        ),
        Operation(
            "GET", "/v1/notifications/{messageId}", notifications.get_notification,
            "A notification's state", "notifications",
            scope="notifications:read",
            description="Read where the state lives: `herald ingress` forwards it to the "
            "worker (HERALD_WORKER_URL) with the caller's token, and answers the worker's "
            "answer; a worker that does not own the message's partition asks the one that "
            "does (one hop at most, marked `Herald-Forwarded`). While partitions move "
            "between workers: 503 `rebalancing` with Retry-After, never a false 404. A "
            "message accepted (202) is never 404: while the state has not folded what its "
            "status topic held at the GET (a backlog), the worker waits for it, up to "
            "HERALD_READ_CATCH_UP_TIMEOUT, then 503 `state-behind` with Retry-After.",
            params=(
                Param("messageId", "path", "The message's id.",
                      {"type": "string", "pattern": ID_RE.pattern}, required=True),
                Param("Prefer", "header", "`wait=N` (N at most 30): answer once the message "
                      "is sent or final, or after N seconds."),
            ),
            answers=(Answer(200, "Status, channel, attempts and history.", NotificationState),),
            problems=(NOT_FOUND, REBALANCING, STATE_BEHIND, WORKER_UNAVAILABLE),
        ),
        Operation(
            "GET", "/v1/notifications/{messageId}/reservation", notifications.get_reservation,
            "What an id's reservation makes of a body (internal)", "internal",
            scope="notifications:send",
            description="What `herald ingress` asks the worker before it accepts a "
            "client-chosen messageId (or Idempotency-Key): read from the worker's copy of "
            "the idempotency table. An ingress that gets no answer in "
            "HERALD_WORKER_CHECK_TIMEOUT accepts, and ingest catches a conflict.",
            params=(
                Param("messageId", "path", "The message's id.",
                      {"type": "string", "pattern": ID_RE.pattern}, required=True),
                Param("fingerprint", "query", "The body's fingerprint "
                      "(`pipeline.domain.idempotency.fingerprint`, SHA-256 hex).",
                      {"type": "string", "pattern": FINGERPRINT_RE.pattern}, required=True),
            ),
            answers=(Answer(200, "`new`, `duplicate` or `conflict`.", Reservation),),
            problems=(INVALID, WORKER_UNAVAILABLE),
        ),
        Operation(
            "GET", "/v1/users/{userId}/consent", users.get_consent,
            "A user's stored preferences (internal)", "internal",
            scope="notifications:send",
            description="What a worker's door asks of the worker that owns the user's "
            "partition before it answers a POST (the opted-out check), with the caller's "
            "token and `Herald-Forwarded`: the preferences record stored there, or null.",
            params=(user_id,),
            answers=(Answer(200, "The stored record, or null.", StoredPreferences),),
            problems=(INVALID, REBALANCING),
        ),
        Operation(
            "PUT", "/v1/templates/{templateId}", templates_api.put_template,
            "Save a template", "templates",
            scope="templates:manage",
            body=TemplateBody,
            description="Checked before it is saved: it must compile in the rendering "
            "sandbox, reach nothing named with a leading `_` (`{{ ''.__class__ }}` is 422, "
            "never rendered), and use exactly the variables it declares. Saved as the next "
            "version on `herald.templates` and answered once this process uses it; every "
            "worker reads it from there, so the next message uses it without a restart. "
            "The tenant's own template replaces a shipped one of the same id for that "
            "tenant only. Each message's state names the version it was rendered from.",
            params=(template_id,),
            answers=(Answer(201, "Saved, version 1 for the tenant.", StoredTemplate),
                     Answer(200, "Saved as the next version.", StoredTemplate)),
            problems=(BAD_TEMPLATE, STATE_BEHIND),
        ),
        Operation(
            "GET", "/v1/templates/{templateId}", templates_api.get_template,
            "A template", "templates",
            scope="templates:manage",
            description="The template the tenant's messages are rendered from now: the "
            "tenant's saved one, else the shipped one (`source`).",
            params=(template_id,),
            answers=(Answer(200, "The template and its version.", StoredTemplate),),
            problems=(NOT_FOUND, INVALID),
        ),
        Operation(
            "GET", "/v1/templates", templates_api.list_templates,
            "The tenant's templates", "templates",
            scope="templates:manage",
            description="Every template the tenant can send: shipped and saved, by id.",
            answers=(Answer(200, "Id, version, priority and source of each.", TemplateListing),),
            problems=(),
        ),
        Operation(
            "PUT", "/v1/users/{userId}/profile", users.put_profile,
            "Replace a user's profile", "users",
            scope="users:manage",
            body=ProfileBody,
            description="The body replaces the whole profile: a field it leaves out is no "
            "longer stored. Checked as a request's recipient is (email, E.164 phone and "
            "WhatsApp, a known IANA time zone, a BCP 47 locale; sizes bounded), produced to "
            "`herald.users.profiles` (key `tenant:userId`) and acknowledged by the broker "
            "before the 200. A request naming only `recipient.userId` is then sent to the "
            "profile's contact points; what a request carries overrides the profile for "
            "that message. Locale: the request's, else the profile's, else the tenant's "
            "default. Attributes are the template variable `user` (`{{ user.tier }}`).",
            params=(user_id,),
            answers=(Answer(200, "The profile as stored.", Profile),),
            problems=(WORKER_UNAVAILABLE,),
        ),
        Operation(
            "GET", "/v1/users/{userId}/profile", users.get_profile,
            "A user's profile", "users",
            scope="users:manage",
            description="Read where the user's partition lives (the worker that owns it; "
            "`herald ingress` asks the worker), once the profiles table holds every PUT "
            "answered before this GET (else, after HERALD_READ_CATCH_UP_TIMEOUT, 503 "
            "`state-behind`). Another tenant's user is 404.",
            params=(user_id,),
            answers=(Answer(200, "The profile as stored.", Profile),),
            problems=(NOT_FOUND, REBALANCING, STATE_BEHIND, WORKER_UNAVAILABLE),
        ),
        Operation(
            "GET", "/v1/users/{userId}/recipient", users.get_recipient,
            "A user's stored profile (internal)", "internal",
            scope="notifications:send",
            description="What a door asks of the worker that owns the user's partition "
            "before it answers a POST naming only `recipient.userId`, with the caller's "
            "token and `Herald-Forwarded`: the profile stored there, or null.",
            params=(user_id,),
            answers=(Answer(200, "The stored profile, or null.", StoredProfile),),
            problems=(INVALID, REBALANCING, STATE_BEHIND),
        ),
        Operation(
            "POST", "/webhooks/{provider}", receivers.provider_webhook,
            "A provider's delivery events", "webhooks",
            body=RawBody("The provider's own payload, as it signed it.", json_or_form),
            description="No JWT: the provider's signature is checked (and its signed "
            "timestamp, where the provider signs one, against the replay window). A receiver "
            "whose secret is not set is off (404 `webhook-receiver-off`). Events reach "
            "`herald.provider.events` before the 200.",
            params=(Param("provider", "path", "Which provider's scheme to verify.",
                          {"type": "string", "enum": list(WEBHOOK_PROVIDERS)}, required=True),),
            answers=(Answer(200, "The events were published.", WebhookAccepted),),
            problems=(WEBHOOK_UNSIGNED, NOT_FOUND, WEBHOOK_OFF, INVALID),
        ),
        Operation(
            "GET", "/webhooks/{provider}", receivers.whatsapp_subscription,
            "WhatsApp subscription handshake", "webhooks",
            description="Meta's verification of the callback URL (GET /webhooks/whatsapp-cloud); "
            "no other provider answers GET.",
            params=(
                Param("provider", "path", "Only `whatsapp-cloud`.",
                      {"type": "string", "enum": ["whatsapp-cloud"]}, required=True),
                Param("hub.mode", "query", "Always `subscribe`.",
                      {"type": "string", "enum": ["subscribe"]}, required=True),
                Param("hub.verify_token", "query", "WHATSAPP_VERIFY_TOKEN.", required=True),
                Param("hub.challenge", "query", "Echoed when the token matches.", required=True),
            ),
            answers=(Answer(200, "The challenge, echoed.", media="text/plain", schema=string),),
            problems=(SUBSCRIPTION_REFUSED, NOT_FOUND),
        ),
        Operation(
            "GET", "/healthz", service.healthz, "Liveness", "service",
            answers=(Answer(200, "The process answers.", Health),),
        ),
        Operation(
            "GET", "/readyz", service.readyz, "Readiness", "service",
            answers=(Answer(200, "Joined its group, tables recovered.", Ready),),
            problems=(NOT_READY,),
        ),
        Operation(
            "GET", "/metrics", service.metrics, "Prometheus metrics", "service",
            answers=(Answer(200, "The text exposition format.", media="text/plain",
                            schema=string),),
        ),
        Operation(
            "GET", "/openapi.json", service.openapi_json, "This description", "service",
            answers=(Answer(200, "OpenAPI 3.1.", media="application/json",
                            schema={"type": "object"}),),
        ),
        Operation(
            "GET", "/docs", service.docs, "The API reference page", "service",
            answers=(Answer(200, "HTML rendered from /openapi.json.", media="text/html",
                            schema=string),),
        ),
    )  # fmt: skip
