"""The retry policy of the seed (section 6.6): per class of error, how many retries and
how long to wait. A plain value object: the send stage asks it, unit tests table it.

    error class      retries  backoff                         then
    timeout          3        exponential 2 s, 4 s, 8 s       dead letter
    rate-limit       5        linear 60 s (or Retry-After)    dead letter
    provider-error   3        exponential                     dead letter
    provider-auth    0        none                            dead letter
    invalid          0        none                            dead letter at once

The counts are per message, across the channel's providers: each retry after a provider
failure goes to the next provider (`pipeline.domain.failover`), and `decide(floor=)`
lets a class with fewer retries than the channel has providers (provider-auth: a key
one provider refuses says nothing about the next) still reach each provider once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    PermanentError,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    TransientError,
)

__all__ = ["DEFAULT_RULES", "Backoff", "ErrorClass", "RetryDecision", "RetryPolicy", "RetryRule"]


class ErrorClass(StrEnum):
    """How a failed call is retried (the value is what `retryCounts` records)."""

    TIMEOUT = "timeout"
    RATE_LIMIT = "rate-limit"
    PROVIDER_ERROR = "provider-error"
    PROVIDER_AUTH = "provider-auth"
    INVALID = "invalid"

    @classmethod
    def of(cls, error: DeliveryError) -> ErrorClass:
        if isinstance(error, RateLimited):
            return cls.RATE_LIMIT
        if isinstance(error, ProviderTimeout):
            return cls.TIMEOUT
        if isinstance(error, TransientError):
            return cls.PROVIDER_ERROR
        if isinstance(error, ProviderAuthError):
            return cls.PROVIDER_AUTH
        if isinstance(error, InvalidData | PermanentError):
            return cls.INVALID
        return cls.PROVIDER_ERROR


class Backoff(StrEnum):
    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    NONE = "none"


@dataclass(frozen=True)
class RetryRule:
    """How one class of error is retried."""

    retries: int
    backoff: Backoff
    base_s: float

    def delay(self, retry: int) -> float:
        """Delay before retry number `retry` (1-based)."""
        if self.backoff is Backoff.EXPONENTIAL:
            return float(self.base_s * 2 ** (retry - 1))
        if self.backoff is Backoff.LINEAR:
            return self.base_s
        return 0.0


DEFAULT_RULES: Mapping[ErrorClass, RetryRule] = {
    ErrorClass.TIMEOUT: RetryRule(3, Backoff.EXPONENTIAL, 2.0),  # 2 s, 4 s, 8 s
    ErrorClass.RATE_LIMIT: RetryRule(5, Backoff.LINEAR, 60.0),  # or the provider's Retry-After
    ErrorClass.PROVIDER_ERROR: RetryRule(3, Backoff.EXPONENTIAL, 2.0),  # 5xx
    ErrorClass.PROVIDER_AUTH: RetryRule(0, Backoff.NONE, 0.0),  # our credentials refused
    ErrorClass.INVALID: RetryRule(0, Backoff.NONE, 0.0),
}


@dataclass(frozen=True)
class RetryDecision:
    error_class: ErrorClass
    retry: bool
    delay_s: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Decides, per error class, whether and when a failed attempt is retried.

    `scale` shrinks the policy's own delays (tests, demos); a provider's
    Retry-After is honoured as given, never scaled down.
    """

    rules: Mapping[ErrorClass, RetryRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    scale: float = 1.0

    @staticmethod
    def classify(error: DeliveryError) -> ErrorClass:
        return ErrorClass.of(error)

    def decide(
        self, error: DeliveryError, retries_so_far: Mapping[str, int], floor: int = 0
    ) -> RetryDecision:
        """Retry or not, and when; `floor`: at least that many retries, whatever the rule."""
        error_class = ErrorClass.of(error)
        rule = self.rules[error_class]
        done = retries_so_far.get(error_class.value, 0)
        if done >= max(rule.retries, floor):
            return RetryDecision(error_class, retry=False)
        delay = rule.delay(done + 1) * self.scale
        if error.retry_after is not None:  # the provider said when: never earlier
            after = error.retry_after
            delay = after if error_class is ErrorClass.RATE_LIMIT else max(delay, after)
        return RetryDecision(error_class, retry=True, delay_s=delay)
