"""Every error Herald raises, in one place, importing nothing from the package.

    HeraldError
    ├── ConfigError                  settings or environment unusable
    ├── BatchUnsupported             send_batch on a provider without a batch API
    ├── BrokerError                  the local Kafka broker cannot be fetched/started
    ├── CatalogError                 topics.yaml, schemas/ or the cluster disagree
    ├── NotAcknowledged              the broker did not acknowledge records a batch produced
    ├── DecodeError                  bytes that are not a record we know
    │   └── MalformedBody            an HTTP body that is not a JSON object (400)
    ├── ValidationError              a well-formed record whose content is wrong
    │   ├── TemplateError            unknown template or missing variable
    │   │   └── TemplateDataError    data a template cannot render (a date that is not one)
    │   ├── RequestTooLarge          a request over what its topic takes (413, too-large)
    │   └── RenderedTooLarge         rendered content over what a lane takes (422, too-large)
    ├── AuthError                    bad or missing token (401)
    │   ├── ScopeError               token lacks a scope (403)
    │   └── StaleSignature           a webhook signed outside the replay window (401)
    ├── QuotaExceeded                a tenant over its request quota at the door (429)
    ├── WorkerUnavailable            the worker holding the state did not answer (503)
    │   ├── Rebalancing              the key's partition is moving between workers (503)
    │   └── StateBehind              the state has not caught up with its writes yet (503)
    └── DeliveryError                a provider call did not succeed
        ├── TransientError           retry later: 5xx and other passing faults
        │   ├── RateLimited          429 and the providers' throttling codes
        │   ├── ProviderTimeout      no answer in time, or the connection failed
        │   └── CircuitOpen          every provider of the channel has an open circuit
        └── PermanentError           retrying cannot help
            ├── RecipientUnreachable not reachable on this channel: next channel
            ├── InvalidData          the provider rejected the content
            └── ProviderAuthError    our credentials or configuration are wrong

Transient vs permanent is exactly the retry decision.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BatchUnsupported",
    "BrokerError",
    "CatalogError",
    "CircuitOpen",
    "ConfigError",
    "ContentOverLimit",
    "DecodeError",
    "DeliveryError",
    "HeraldError",
    "InvalidData",
    "MalformedBody",
    "NotAcknowledged",
    "PermanentError",
    "ProviderAuthError",
    "ProviderTimeout",
    "QuotaExceeded",
    "RateLimited",
    "Rebalancing",
    "RecipientUnreachable",
    "RenderedTooLarge",
    "RequestTooLarge",
    "ScopeError",
    "StaleSignature",
    "StateBehind",
    "TemplateDataError",
    "TemplateError",
    "TransientError",
    "ValidationError",
    "WorkerUnavailable",
]


class HeraldError(Exception):
    """Root of every Herald error."""


class ConfigError(HeraldError):
    """A setting or the environment is unusable."""


class BatchUnsupported(HeraldError):
    """`send_batch` called on a provider whose `supports_batch` is false (a caller's bug)."""


class BrokerError(HeraldError):
    """The local Kafka broker could not be fetched, started or stopped."""


class CatalogError(HeraldError):
    """The topic catalog, the schemas or the cluster disagree."""


class NotAcknowledged(HeraldError):
    """Records a batch produced (or table writes) the broker refused or did not confirm in time."""


class DecodeError(HeraldError):
    """Bytes that do not decode to a record of a known schema."""


class MalformedBody(DecodeError):
    """An HTTP request body that is not JSON, or not a JSON object (400, not 422)."""


class ValidationError(HeraldError):
    """A decoded record (or HTTP body) whose content is invalid.

    `errors` lists `{"field": ..., "message": ...}` for problem+json bodies.
    """

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class TemplateError(ValidationError):
    """Unknown template, locale or channel, or a variable the data lacks."""


class TemplateDataError(TemplateError):
    """Data the template has but cannot render: a date, number or time zone it cannot read.

    Unlike a channel the template has no content for, this is wrong on every channel,
    so the door refuses it (422) rather than trying the next channel.
    """


class RequestTooLarge(ValidationError):
    """A request bigger than `herald.notifications.requests` takes (HTTP 413)."""


class RenderedTooLarge(ValidationError):
    """Content that renders bigger than a channel lane's dispatch takes (HTTP 422)."""


class ContentOverLimit(ValidationError):
    """Content its channel's provider would refuse: too big, or a reserved push data key
    (HTTP 422, `invalid`)."""


class AuthError(HeraldError):
    """Missing, malformed, expired or wrongly signed token."""


class ScopeError(AuthError):
    """A valid token without the scope the call needs."""


class QuotaExceeded(HeraldError):
    """A tenant sent more requests than its quota admits; `retry_after` seconds until one is."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StaleSignature(AuthError):
    """A provider webhook whose signed timestamp is outside the replay window."""


class WorkerUnavailable(HeraldError):
    """An ingress could not get an answer from the worker it asks for a message's state."""


class Rebalancing(WorkerUnavailable):
    """The worker that holds a key is changing: a rebalance or recovery is under way."""


class StateBehind(WorkerUnavailable):
    """The state projection is behind its status topic: a message absent from it now may
    have been accepted, so it is neither shown nor denied."""


class DeliveryError(HeraldError):
    """A provider call that did not succeed."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """May succeed later: network timeout, provider 5xx, rate limit."""


class RateLimited(TransientError):
    """The provider asks us to slow down (`retry_after` when it said how long)."""


class ProviderTimeout(TransientError):
    """The provider did not answer in time, or could not be reached.

    `in_doubt`: the request may have reached the provider (it was sent, no answer came),
    so the provider may have taken it; a connection never made leaves no doubt.
    """

    def __init__(self, message: str, *, in_doubt: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.in_doubt = in_doubt


class CircuitOpen(TransientError):
    """Every provider of the channel has an open circuit: retry later."""


class PermanentError(DeliveryError):
    """Will not succeed by retrying."""


class RecipientUnreachable(PermanentError):
    """The recipient cannot be reached on this channel; another channel may work."""


class InvalidData(PermanentError):
    """The provider rejected the request's content."""


class ProviderAuthError(PermanentError):
    """The provider refused our credentials or configuration."""
