"""Shared fixtures, and the markers of each folder: everything under tests/unit is `unit`
(pure logic, no broker), under tests/integration `integration` (a real Apache Kafka broker
started for the session: single node, KRaft, loopback, free ports, unless
HERALD_TEST_BOOTSTRAP names an existing cluster). `slow` is set per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
FOLDER_MARKERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration,
                  "e2e": pytest.mark.e2e}  # fmt: skip


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])
    # Unit tests first: they fail fast, before a broker is started.
    items.sort(key=lambda item: 0 if item.get_closest_marker("unit") else 1)


os.environ.setdefault("HERALD_LOG_LEVEL", "warn")
