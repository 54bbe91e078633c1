"""SMS segments: how many parts a text goes out in, and in which encoding (GSM-7 or UCS-2).

An SMS carries 140 bytes. A text made only of GSM 03.38 characters goes as GSM-7: 160
septets in one message; the characters of the extension table (`€ [ ] { } \\ ^ ~ |` and
form feed) take two septets (an escape, then the character). Any other character (an
emoji, `ç`, `á`, Cyrillic, ...) turns the whole text into UCS-2: 70 UTF-16 code units, a
character outside the Basic Multilingual Plane (most emoji) taking two. A longer text is
concatenated: each part gives 6 bytes to its user data header, leaving 153 septets or 67
code units. A part never splits an escape pair or a surrogate pair, so a part may end a
unit short. Providers bill per segment and Herald records the count on the SMS SENT
status (`pipeline.domain.records.status_record`); the count is pure arithmetic over the
text, no provider is asked.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GSM7", "GSM7_BASIC", "GSM7_EXTENSION", "UCS2", "SmsSegments", "count_segments",
    "sms_segments",
]  # fmt: skip

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# GSM 03.38 default alphabet (127 characters: every code but 0x1B, the escape).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: an escape septet, then the character's own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
# (units in a single message, units per part of a concatenated one)
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsSegments:
    """A text's encoding, its length in that encoding's units, and its part count."""

    encoding: str  # GSM7 (units are septets) or UCS2 (units are UTF-16 code units)
    units: int
    segments: int


def _units(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> SmsSegments:
    """`text`'s encoding, units and segments; an empty text is one (empty) segment."""
    gsm = all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)
    encoding = GSM7 if gsm else UCS2
    units = _units(text, encoding)
    single, per_part = _LIMITS[encoding]
    total = sum(units)
    if total <= single:
        return SmsSegments(encoding, total, 1)
    parts, room = 1, per_part
    for width in units:
        if width > room:  # an escape or surrogate pair stays whole: the next part
            parts, room = parts + 1, per_part
        room -= width
    return SmsSegments(encoding, total, parts)


def sms_segments(text: str) -> int:
    """The number of SMS segments `text` goes out in."""
    return count_segments(text).segments
