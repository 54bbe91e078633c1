"""Prefer: wait (RFC 7240) as the API reads it: seconds, capped at 30."""

from __future__ import annotations

import pytest

from pipeline.http.notifications import prefer_wait


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [([], 0.0), (["wait=5"], 5.0), (["respond-async, wait=10"], 10.0), (["wait=120"], 30.0),
     (["return=minimal"], 0.0)],
)  # fmt: skip
def test_prefer_wait(headers: list[str], seconds: float) -> None:
    assert prefer_wait(headers) == seconds
