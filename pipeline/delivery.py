"""One delivery attempt: call the provider, time it, classify the outcome."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import DeliveryError, PermanentError, TransientError
from .metrics import Metrics
from .providers.base import Accepted, Message, Provider


@dataclass(frozen=True)
class AttemptResult:
    provider: str
    accepted: Accepted | None = None
    error: DeliveryError | None = None

    @property
    def outcome(self) -> str:
        if self.accepted:
            return "accepted"
        if isinstance(self.error, TransientError):
            return "transient"
        if isinstance(self.error, PermanentError):
            return type(self.error).__name__
        return "error"

    def describe(self) -> str:
        err = self.error
        if err is None:
            return ""
        return f"{self.provider} {err.code or type(err).__name__}: {err}"[:500]


def message_for(dispatch: Mapping[str, Any]) -> Message:
    return Message(
        message_id=dispatch["messageId"],
        tenant=dispatch["tenant"],
        channel=dispatch["channel"],
        to=dispatch["to"],
        text=dispatch["text"],
        subject=dispatch.get("subject"),
        html=dispatch.get("html"),
    )


async def attempt_delivery(
    dispatch: Mapping[str, Any], provider: Provider, metrics: Metrics
) -> AttemptResult:
    started = time.perf_counter()
    try:
        accepted = await provider.send(message_for(dispatch))
        result = AttemptResult(provider.name, accepted=accepted)
    except DeliveryError as exc:
        result = AttemptResult(provider.name, error=exc)
    metrics.provider_seconds.labels(provider.name).observe(time.perf_counter() - started)
    metrics.provider_requests.labels(provider.name, result.outcome).inc()
    return result
