"""Dates, times and numbers in the reader's locale and time zone: jinja2 filters over Babel.

`{{ departure | datetime }}`, `| date`, `| time`, `| number`, `| currency('EUR')`: the
value comes from the request's data (an RFC 3339 time with an offset, or a datetime;
`| date` also takes a calendar date `2026-12-01`, shown as it is, never shifted), and is
shown in the locale the message is rendered in and in the recipient's time zone
(`recipient.timezone`, IANA; UTC without one). Babel knows each locale's patterns, so
nothing is formatted by hand: `15:05` in Spanish, `3:05 PM` in English.

A value a filter cannot read is a TemplateDataError (HTTP 422 at the door, a dead letter
`invalid` from Kafka), never a crash and never a raw value in a message. The filters find
the render's locale, zone and channel in the context under RENDER_KEY, a name no template
can write (it is not an identifier) and no request can set (the catalog writes it last).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, get_datetime_format
from babel.numbers import format_currency, format_decimal, is_currency
from jinja2 import pass_context
from jinja2.runtime import Context

from pipeline.clock import parse_time
from pipeline.exceptions import TemplateDataError, TemplateError

__all__ = ["FILTERS", "RENDER_KEY", "RenderSettings", "time_zone", "valid_time_zone"]

RENDER_KEY = "herald:render"
_RFC3339 = "an RFC 3339 time with an offset, e.g. 2026-12-01T09:00:00Z"
# Babel puts no-break spaces in times and amounts (3:05 PM, 1.234,50 €): not in GSM-7, one
# of them would make a whole SMS UCS-2 (70 characters a segment instead of 160).
_NO_BREAK = str.maketrans({"\u00a0": " ", "\u202f": " "})


def valid_time_zone(name: object) -> bool:
    """Whether `name` is an IANA time zone this machine knows (`Europe/Madrid`)."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def time_zone(name: str | None) -> tzinfo:
    """The zone named `name`; UTC without one. TemplateDataError if there is no such zone."""
    if not name:
        return UTC
    if not valid_time_zone(name):
        message = "not an IANA time zone, e.g. Europe/Madrid"
        raise TemplateDataError(
            f"recipient.timezone is {message}",
            [{"field": "recipient.timezone", "message": message}],
        )
    return ZoneInfo(name)


@dataclass(frozen=True)
class RenderSettings:
    """What the filters need to know about one render: locale, zone, channel."""

    locale: str
    zone: tzinfo = UTC
    channel: str = ""

    @property
    def babel_locale(self) -> Locale:
        """Babel's locale for the template's tag: `es-MX`, else `es`, else English."""
        tag = self.locale.replace("-", "_")
        for form in (tag, tag.split("_")[0], "en"):
            try:
                return Locale.parse(form)
            except (UnknownLocaleError, ValueError):
                continue
        return Locale.parse("en")

    def out(self, text: str) -> str:
        return text.translate(_NO_BREAK) if self.channel == "sms" else text


def _settings(context: Context) -> RenderSettings:
    found = context.get(RENDER_KEY)
    return found if isinstance(found, RenderSettings) else RenderSettings("en")


class _Unreadable(Exception):
    """A value a filter cannot read; `_filter` names the data fields that hold it."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _filter(name: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """A Babel formatter as a jinja2 filter that reads the render's settings.

    A value it cannot read is a TemplateDataError naming the data field(s) that hold
    it (`data.newTime`; `data` when the value was computed in the template); a format
    argument Babel refuses is the template's fault, a TemplateError, never a crash.
    """

    def wrap(format_: Callable[..., str]) -> Callable[..., str]:
        @pass_context
        def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
            settings = _settings(context)
            try:
                return settings.out(format_(settings, value, *args, **kwargs))
            except _Unreadable as exc:
                message = f"the template's `{name}` filter needs {exc.expected}"
                fields = [
                    f"data.{k}" for k, v in context.parent.items() if v is value and k != RENDER_KEY
                ] or ["data"]
                raise TemplateDataError(
                    f"{', '.join(fields)}: {message}",
                    [{"field": f, "message": message} for f in fields],
                ) from None
            except (ValueError, TypeError, LookupError, AttributeError) as exc:
                raise TemplateError(f"the template's `{name}` filter failed: {exc}") from exc

        run.__doc__ = format_.__doc__
        return run

    return wrap


def _moment(value: Any) -> datetime:
    """An aware datetime from an RFC 3339 string or an aware datetime."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        try:
            return parse_time(value.strip())
        except ValueError:
            pass
    raise _Unreadable(_RFC3339)


def _number(value: Any) -> Decimal | int | float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number: Decimal | int | float = value
    else:
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise _Unreadable("a number, e.g. 1234.5") from None
    if isinstance(number, Decimal | float) and not Decimal(number).is_finite():
        raise _Unreadable("a finite number")
    return number


@_filter("datetime")
def _datetime(s: RenderSettings, value: Any, format: str | None = None) -> str:
    """Date and time in the zone: `Nov 29, 2026, 3:05 PM` / `29 nov 2026, 15:05`.

    Without `format`, the locale's medium date and short time; else Babel's
    `short`/`medium`/`long`/`full` or a CLDR pattern.
    """
    moment = _moment(value)
    if format is not None:
        return format_datetime(moment, format, tzinfo=s.zone, locale=s.babel_locale)
    local = moment.astimezone(s.zone)
    day = format_date(local, "medium", locale=s.babel_locale)
    hour = format_time(local, "short", locale=s.babel_locale)
    pattern = get_datetime_format("medium", locale=s.babel_locale)
    return str(pattern).replace("'", "").replace("{0}", hour).replace("{1}", day)


@_filter("date")
def _date(s: RenderSettings, value: Any, format: str = "medium") -> str:
    """The date in the zone (`Nov 29, 2026` / `29 nov 2026`); a calendar date as it is."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day: date = value
    elif isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise _Unreadable(f"a date (2026-12-01) or {_RFC3339}") from None
    else:
        day = _moment(value).astimezone(s.zone).date()
    return format_date(day, format, locale=s.babel_locale)


@_filter("time")
def _time(s: RenderSettings, value: Any, format: str = "short") -> str:
    """The time of day in the zone: `3:05 PM` / `15:05`."""
    return format_time(_moment(value).astimezone(s.zone), format, locale=s.babel_locale)


@_filter("number")
def _number_text(s: RenderSettings, value: Any, format: str | None = None) -> str:
    """A number with the locale's separators: `1,234.5` / `1.234,5`."""
    return format_decimal(_number(value), format, locale=s.babel_locale)


@_filter("currency")
def _currency(s: RenderSettings, value: Any, currency: str, format: str | None = None) -> str:
    """An amount in `currency` (ISO 4217) the locale's way: `€1,234.50` / `1.234,50 €`."""
    code = str(currency).upper()
    if not is_currency(code):
        raise _Unreadable(f"an ISO 4217 currency code, e.g. EUR (got {code[:8]!r})")
    return format_currency(_number(value), code, format, locale=s.babel_locale)


FILTERS: Mapping[str, Callable[..., str]] = MappingProxyType(
    {
        "datetime": _datetime,
        "date": _date,
        "time": _time,
        "number": _number_text,
        "currency": _currency,
    }
)
