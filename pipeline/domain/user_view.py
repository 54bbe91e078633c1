"""The template variable `user`: a profile's attributes, as a template reads them.

Templates render with `StrictUndefined` (a missing data variable is an error, never a
blank), but a profile's attributes are whatever each user happens to have: a condition
on one a user lacks (`{% if user.tier == "gold" %}`) must be false, not an error. So
`user.tier` and `user["tier"]` are the attribute's value, or None when it is absent.
Names that start with `_` are never looked up (the sandbox refuses them anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["USER_VARIABLE", "UserAttributes"]

USER_VARIABLE = "user"  # the name templates read it by; Herald sets it, never the data


class UserAttributes:
    """A read-only view of a profile's attributes where an absent one is None."""

    __slots__ = ("_values",)
    _values: dict[str, str]

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, name: str) -> str | None:
        if name.startswith("_"):
            raise AttributeError(name)
        value: str | None = self._values.get(name)
        return value

    def __getitem__(self, name: str) -> str | None:
        return self._values.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a user's attributes are read-only in a template")

    def __bool__(self) -> bool:
        return bool(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserAttributes) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"UserAttributes({sorted(self._values)})"  # names only: no personal data
