"""Time as Herald writes it: RFC 3339, UTC, millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_time", "now", "parse_time"]


def now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 (a `Z` or an offset is required); ValueError otherwise."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time zone offset is required")
    return moment
