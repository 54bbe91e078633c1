"""The bodies of `/v1/users/{userId}/profile`: what a PUT sends and what a GET answers.

The model checks types and shapes (unknown fields are 422, as for every body); the
rules a request's recipient follows (email-validator, E.164, a known IANA zone, a locale
tag, bounded sizes) are `pipeline.domain.profiles.check_profile`'s, applied after it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.domain.profiles import (
    ATTRIBUTE_NAME_RE,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_LOCALE,
    MAX_PUSH_TOKENS,
    MAX_TOKEN_LENGTH,
)
from pipeline.domain.validation import E164_RE, EMAIL_RE

__all__ = ["Profile", "ProfileBody", "StoredProfile"]

_Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
_Value = Annotated[str, Field(max_length=MAX_ATTRIBUTE_VALUE)]
_Name = Annotated[str, Field(pattern=ATTRIBUTE_NAME_RE.pattern)]


class ProfileBody(BaseModel):
    """A user's profile, whole: a PUT replaces what is stored (a field left out is erased)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"email": "ana@example.com", "phone": "+34600111222", "locale": "es",
                 "timezone": "Europe/Madrid", "attributes": {"tier": "gold"}}
            ]
        },
    )  # fmt: skip

    email: str | None = Field(None, pattern=EMAIL_RE.pattern)
    phone: str | None = Field(None, pattern=E164_RE.pattern, description="E.164, for SMS.")
    whatsapp: str | None = Field(None, pattern=E164_RE.pattern, description="E.164.")
    pushTokens: list[_Token] | None = Field(None, max_length=MAX_PUSH_TOKENS)
    locale: str | None = Field(
        None, max_length=MAX_LOCALE,
        description="BCP 47, e.g. `es-MX`: used when a request names no locale.",
    )  # fmt: skip
    timezone: str | None = Field(
        None, description="IANA, e.g. `Europe/Madrid`: used when a request names none."
    )
    attributes: dict[_Name, _Value] | None = Field(
        None, max_length=MAX_ATTRIBUTES,
        description="Text values, read in templates as `{{ user.<name> }}`.",
    )  # fmt: skip

    def fields(self) -> dict[str, Any]:
        """The body as given (what `check_profile` and `profile_record` take)."""
        return self.model_dump(exclude_unset=True)


class Profile(BaseModel):
    """A stored profile (the UserProfile record, without its tenant)."""

    userId: str
    email: str | None
    phone: str | None
    whatsapp: str | None
    pushTokens: list[str]
    locale: str | None
    timezone: str | None
    attributes: dict[str, str]
    updatedAt: str


class StoredProfile(BaseModel):
    """What the worker that holds a user's profile answers another door (internal)."""

    userId: str
    profile: dict[str, Any] | None
