"""State survives a worker killed without warning (RocksDB tables over changelogs)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import httpx
import pytest

from tests.harness import DATA, Stack, history, phone, post, request_body, unique

pytestmark = pytest.mark.slow


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
    assert after.json()["history"] == before["history"], json.dumps(
        [after.json()["history"], before["history"]]
    )
    assert history(after.json())[:3] == ["PENDING", "PROCESSING", "SENT"]

    # The idempotency table survived too: the same messageId is not sent again.
    again = post(stack, request_body(user, messageId=first["messageId"]))
    assert again.status_code == 202
    sentinel = post(stack, request_body(user)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 2
    assert httpx.get(f"{stack.api_of('worker')}/readyz", timeout=5).status_code == 200


def test_retries_waiting_when_the_worker_dies_still_happen_once(stack: Stack) -> None:
    stack.clear_faults()
    numbers = [phone() for _ in range(3)]
    # The first three Twilio calls answer 429 with Retry-After 4 s: three retries wait.
    stack.fault("twilio", fail="429", times=3, retryAfter=4)
    ids = [post(stack, sms_body(unique("wait"), number)).json()["messageId"] for number in numbers]
    for message_id in ids:
        stack.wait_status(message_id, "RETRY")

    stack.stop("worker", kill=True)  # while every retry is waiting in the scheduler
    stack.start("worker")

    for message_id, number in zip(ids, numbers, strict=True):
        state = stack.wait_status(message_id, "SENT", timeout=60)
        assert history(state).count("RETRY") == 1 and history(state).count("SENT") == 1
        # The retry fails over to the channel's next provider, once.
        assert [m["provider"] for m in stack.sim_messages(to=number)] == ["vonage"]
    stack.clear_faults()


def sms_body(user: str, number: str) -> dict[str, Any]:
    return {
        "recipient": {"userId": user, "phone": number},
        "template": "booking-confirmation",
        "data": DATA,
    }
