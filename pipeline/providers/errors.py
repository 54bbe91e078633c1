"""Error tables: a provider's answers to Herald's error classes, as data.

Each adapter declares one `ErrorTable`: its own error codes first (the
provider's code says more than the HTTP status, and for WhatsApp the status
varies), then HTTP statuses for the answers whose code the table does not
list (a proxy's page, a code that is new). What neither names falls back to
the table's `otherwise`, usually InvalidData: the provider refused the
content. The class decides the retry: `TransientError` and its children are
retried (with the provider's retry hint), the rest are not (see
`pipeline.exceptions`).

Keys are strings: the provider's code as it writes it (`"21211"`,
`"UNREGISTERED"`), `"HTTP 429"` for one status, `"HTTP 5xx"` for a class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    RateLimited,
    TransientError,
)

__all__ = ["HTTP_STATUSES", "MAX_DETAIL", "ErrorClass", "ErrorTable", "http_keys"]

ErrorClass = type[DeliveryError]

HTTP_STATUSES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "HTTP 429": RateLimited,
        "HTTP 401": ProviderAuthError,
        "HTTP 403": ProviderAuthError,
        "HTTP 5xx": TransientError,
    }
)
"""What the HTTP status alone says, for every HTTP provider."""

MAX_DETAIL = 300  # characters of the provider's message kept in the error


def http_keys(status: int) -> tuple[str, str]:
    """The table keys of an HTTP status: the status itself, then its class."""
    return f"HTTP {status}", f"HTTP {status // 100}xx"


@dataclass(frozen=True)
class ErrorTable:
    """One provider's answers to Herald's error classes."""

    provider: str
    classes: Mapping[str, ErrorClass]
    otherwise: ErrorClass = InvalidData
    # What a code means, where the provider's own message does not say what to do.
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # read-only: tables are module-level constants
        object.__setattr__(self, "classes", MappingProxyType(dict(self.classes)))
        object.__setattr__(self, "notes", MappingProxyType(dict(self.notes)))

    def error_class(self, *keys: str) -> ErrorClass:
        """The class of the first key the table lists, else `otherwise`."""
        return next((self.classes[k] for k in keys if k in self.classes), self.otherwise)

    def error(
        self,
        code: str,
        message: str,
        *,
        keys: Iterable[str] = (),
        retry_after: float | None = None,
        provider: str | None = None,
    ) -> DeliveryError:
        """The error for `code`, else for the first of `keys` the table lists.

        `retry_after` (seconds) is kept on the retried classes only; `provider`
        names the adapter when several share a table (Twilio SMS and WhatsApp).
        """
        cls = self.error_class(code, *keys)
        detail = f"{code}: {self.notes.get(code, message)[:MAX_DETAIL]}"
        hint = retry_after if issubclass(cls, TransientError) else None
        return cls(detail, provider=provider or self.provider, code=code, retry_after=hint)

    def http_error(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str | None = None,
    ) -> DeliveryError:
        """The error of an HTTP answer: its `code` ("" if none) first, then its status."""
        return self.error(
            code or str(status),
            message,
            keys=http_keys(status),
            retry_after=retry_after,
            provider=provider,
        )
