"""User profiles over the running stack (issue 12, item 3): a PUT is read back at once,
and a request naming only its user is sent to the profile's contact points, in the
profile's locale, with the profile's attributes in the template (`{{ user.tier }}`).

`stack.api` is `herald ingress`: it produces the PUT itself and asks the worker for the
profile (GET, and the POST's check), so both doors' paths are crossed.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import DATA, Stack, post, unique, wait_for

MANAGE = "users:manage"


def put_profile(stack: Stack, user: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(f"{stack.api}/v1/users/{user}/profile", json=body,
                     headers=stack.headers("acme", scope=MANAGE), timeout=10)  # fmt: skip


def get_profile(stack: Stack, user: str, tenant: str = "acme", api: str = "") -> httpx.Response:
    return httpx.get(f"{api or stack.api}/v1/users/{user}/profile",
                     headers=stack.headers(tenant, scope=MANAGE), timeout=15)  # fmt: skip


def mail_to(stack: Stack, address: str) -> dict[str, Any]:
    found = wait_for(lambda: stack.sim_messages(to=address), 30.0)
    assert len(found) == 1, found
    return found[0]


def test_a_request_naming_only_its_user_goes_to_the_profile_in_its_locale(stack: Stack) -> None:
    user = unique("prof")
    email = f"{user}@profile.example.com"
    profile = {"email": email, "phone": "+34600123456", "locale": "es",
               "timezone": "Europe/Madrid", "attributes": {"tier": "gold"}}  # fmt: skip
    put = put_profile(stack, user, profile)
    assert put.status_code == 200, put.text
    # Read-your-writes: right after the 200, through the ingress and on the worker itself.
    got = get_profile(stack, user)
    assert got.status_code == 200, got.text
    assert got.json() == put.json() and got.json()["attributes"] == {"tier": "gold"}
    assert get_profile(stack, user, api=stack.api_of("worker")).json() == put.json()
    other = get_profile(stack, user, tenant="globex")
    assert other.status_code == 404 and other.headers["content-type"].startswith(
        "application/problem+json"
    )

    resp = post(stack, {"recipient": {"userId": user}, "template": "booking-confirmation",
                        "data": DATA})  # fmt: skip
    assert resp.status_code == 202, resp.text
    message_id = resp.json()["messageId"]
    mail = mail_to(stack, email)
    text = mail["content"]["content"][0]["value"]
    assert "Hola Ana" in text and "Como miembro Gold" in text, text
    state = stack.wait_status(message_id, "SENT")
    assert state["locale"] == "es" and state["channel"] == "email"


def test_what_the_request_carries_overrides_the_profile(stack: Stack) -> None:
    user = unique("prof")
    put = put_profile(stack, user, {"email": f"{user}@profile.example.com", "locale": "es",
                                    "attributes": {"tier": "silver"}})  # fmt: skip
    assert put.status_code == 200, put.text
    own = f"{user}@request.example.com"
    resp = post(stack, {"recipient": {"userId": user, "email": own, "locale": "en"},
                        "template": "booking-confirmation", "data": DATA})  # fmt: skip
    assert resp.status_code == 202, resp.text
    text = mail_to(stack, own)["content"]["content"][0]["value"]
    assert "Hello Ana" in text and "Gold" not in text, text  # silver: no gold line
    assert stack.wait_status(resp.json()["messageId"], "SENT")["locale"] == "en"
    assert stack.sim_messages(to=f"{user}@profile.example.com") == []


def test_without_a_profile_a_request_naming_only_its_user_is_422(stack: Stack) -> None:
    resp = post(stack, {"recipient": {"userId": unique("nobody")},
                        "template": "booking-confirmation", "data": DATA})  # fmt: skip
    assert resp.status_code == 422, resp.text
    missing = get_profile(stack, unique("nobody"))
    assert missing.status_code == 404
