"""SMS segment counting: GSM-7 (160 in one message, 153 per part; the extension table
counts two septets) versus UCS-2 (70, 67 per part; emoji outside the BMP count two), and
parts that never split an escape or a surrogate pair."""

from __future__ import annotations

import pytest

from pipeline.domain.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    SmsSegments,
    count_segments,
    sms_segments,
)


def test_the_gsm7_tables_are_the_standard_ones() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes but the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsSegments(GSM7, 0, 1)),
        ("Ana, booking X7K2LQ confirmed: IB3456 MAD-BCN on 2026-12-01.",
         SmsSegments(GSM7, 60, 1)),
        ("a" * 160, SmsSegments(GSM7, 160, 1)),  # the single-message boundary
        ("a" * 161, SmsSegments(GSM7, 161, 2)),
        ("a" * 306, SmsSegments(GSM7, 306, 2)),  # 2 x 153
        ("a" * 307, SmsSegments(GSM7, 307, 3)),
        ("Ñandú? ¡Sí! Zürich, Ørsted, Δ", SmsSegments(UCS2, 29, 1)),  # ú, í: not GSM-7
        ("Señor Müller à Évian: £5, ¥6, §7", SmsSegments(GSM7, 32, 1)),  # all GSM-7
    ],
)  # fmt: skip
def test_gsm7_and_ucs2_lengths_and_parts(text: str, expected: SmsSegments) -> None:
    assert count_segments(text) == expected


def test_extension_characters_count_two_septets() -> None:
    assert count_segments("€") == SmsSegments(GSM7, 2, 1)
    assert count_segments("€" * 80) == SmsSegments(GSM7, 160, 1)
    assert count_segments("[" * 81) == SmsSegments(GSM7, 162, 2)
    assert count_segments("a" * 159 + "€").segments == 2  # 161 septets
    assert count_segments("{a|b}~^\\").units == 14  # six escapes, two plain


def test_a_part_never_splits_an_escape_pair() -> None:
    # 153 x € is 306 septets (2 x 153) but a part holds 76 of them (152 + 1 spare): 3 parts.
    assert count_segments("€" * 153) == SmsSegments(GSM7, 306, 3)
    # 306 septets again: the € would straddle the first part's end, so it starts the second.
    assert count_segments("a" * 152 + "€" + "a" * 152) == SmsSegments(GSM7, 306, 3)


def test_ucs2_limits_with_accents_and_emoji() -> None:
    assert count_segments("á" * 70) == SmsSegments(UCS2, 70, 1)
    assert count_segments("á" * 71) == SmsSegments(UCS2, 71, 2)
    assert count_segments("á" * 134) == SmsSegments(UCS2, 134, 2)  # 2 x 67
    assert count_segments("á" * 135) == SmsSegments(UCS2, 135, 3)
    assert count_segments("ç").encoding == UCS2  # only Ç is in GSM-7
    # One emoji turns a GSM-7 text into UCS-2, and counts two code units.
    assert count_segments("a" * 68 + "😀") == SmsSegments(UCS2, 70, 1)
    assert count_segments("a" * 69 + "😀") == SmsSegments(UCS2, 71, 2)


def test_a_part_never_splits_a_surrogate_pair() -> None:
    assert count_segments("😀" * 35) == SmsSegments(UCS2, 70, 1)
    # 67 emoji are 134 code units (2 x 67), but a part holds 33 of them: 3 parts.
    assert sms_segments("😀" * 67) == 3
