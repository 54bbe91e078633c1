"""State survives a worker killed without warning (RocksDB tables over changelogs)."""

from __future__ import annotations

import shutil

import httpx
import pytest

from .harness import Stack
from .test_pipeline import history, post, request_body, unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("wipe_local_state", [False, True], ids=["same-disk", "fresh-disk"])
def test_state_and_dedup_survive_a_killed_worker(stack: Stack, wipe_local_state: bool) -> None:
    user = unique("restart")
    first = post(stack, request_body(user)).json()
    before = stack.wait_status(first["messageId"], "OPENED")  # the last event it gets

    stack.stop("worker", kill=True)
    if wipe_local_state:  # a new machine: tables are rebuilt from their changelogs
        shutil.rmtree(stack.home / "worker", ignore_errors=True)
    stack.start("worker")

    after = stack.state(first["messageId"])
    assert after.status_code == 200
    assert after.json()["history"] == before["history"]
    assert history(after.json())[:3] == ["PENDING", "PROCESSING", "SENT"]

    # The idempotency table survived too: the same messageId is not sent again.
    again = post(stack, request_body(user, messageId=first["messageId"]))
    assert again.status_code == 202
    sentinel = post(stack, request_body(user)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 2
    assert httpx.get(f"{stack.api}/readyz", timeout=5).status_code == 200
