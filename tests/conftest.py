"""Shared fixtures. The integration suite runs against one real Apache Kafka broker
started for the session (single node, KRaft, loopback, free ports), unless
HERALD_TEST_BOOTSTRAP names an existing cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Unit tests first: they fail fast, before a broker is started.
    items.sort(key=lambda item: 0 if item.get_closest_marker("unit") else 1)


os.environ.setdefault("HERALD_LOG_LEVEL", "warn")
