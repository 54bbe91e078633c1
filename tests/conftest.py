"""Shared fixtures, and the markers of each folder.

- tests/unit: `unit`, pure logic in one process: no broker, no subprocess.
- tests/integration: `integration`, against a real Apache Kafka broker started once for
  the session (single node, KRaft, loopback, free ports, unless HERALD_TEST_BOOTSTRAP
  names an existing cluster): the commands, `herald up`, restarts, the kill drill.
- tests/e2e: `integration` and `e2e`, the whole system through its doors: requests over
  HTTP and Kafka, messages at the simulator, statuses on the topic and over HTTP.

`slow` is set per module. The broker, topic and stack fixtures live in tests/stack.py,
the helpers the broker tests share in tests/harness.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.stack import broker_settings, kafka, stack  # noqa: F401 (fixtures, for every folder)

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
FOLDER_MARKERS = {
    "unit": (pytest.mark.unit,),
    "integration": (pytest.mark.integration,),
    "e2e": (pytest.mark.integration, pytest.mark.e2e),
}


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        for marker in FOLDER_MARKERS.get(folder, ()):
            item.add_marker(marker)
    # Unit tests first: they fail fast, before a broker is started.
    items.sort(key=lambda item: 0 if item.get_closest_marker("unit") else 1)


os.environ.setdefault("HERALD_LOG_LEVEL", "warn")
