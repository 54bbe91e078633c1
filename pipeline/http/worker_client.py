"""How an ingress asks the worker what only the worker knows, over the worker's HTTP.

A message's state lives in the worker's notification-state table, and a
client-chosen id's reservation in its idempotency table; `herald ingress` keeps no
tables, so it asks (`HERALD_WORKER_URL`) with the caller's own token, which the
worker checks again. The idempotency question has a short deadline
(`HERALD_WORKER_CHECK_TIMEOUT`): unanswered, the ingress accepts, and ingest,
which decides with the same table, dead-letters a conflicting body
(`idempotency-conflict`) and drops a duplicate.

A worker asks another worker the same way (`pipeline.http.routing`), for the state
the preferences and the profiles that live in the other's partitions, adding
`Herald-Forwarded`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import aiohttp
import structlog

from pipeline.domain.idempotency import Seen
from pipeline.exceptions import Rebalancing, StateBehind, WorkerUnavailable

__all__ = ["WorkerClient"]

log = structlog.get_logger("herald.ingress")
_MARGIN_S = 5.0  # beyond a `Prefer: wait`, how long the worker may take to answer
# The worker's 503s that the ingress passes on as they are.
_PASSED_ON: Mapping[str, type[WorkerUnavailable]] = {
    "urn:herald:problem:rebalancing": Rebalancing,
    "urn:herald:problem:state-behind": StateBehind,
}


class WorkerClient:
    """The worker's HTTP, seen from an ingress."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, check_timeout_s: float,
        headers: Mapping[str, str] | None = None, read_catch_up_s: float = 10.0,
    ) -> None:  # fmt: skip
        self.session = session
        self.read_catch_up_s = read_catch_up_s  # the worker's HERALD_READ_CATCH_UP_TIMEOUT
        self.base_url = base_url.rstrip("/")
        self.check_timeout_s = check_timeout_s
        self.headers = dict(headers or {})  # sent with every request (`Herald-Forwarded`)

    async def state(
        self, authorization: str, message_id: str, wait_s: float = 0.0
    ) -> dict[str, Any] | None:
        """The worker's answer to `GET /v1/notifications/{id}`: the state, or None (404)."""
        headers = {**self.headers, "Authorization": authorization}
        if wait_s:
            headers["Prefer"] = f"wait={wait_s:g}"
        url = f"{self.base_url}/v1/notifications/{message_id}"
        # An absent message may wait for the worker's state to catch up (read-your-writes).
        timeout = aiohttp.ClientTimeout(total=wait_s + self.read_catch_up_s + _MARGIN_S)
        try:
            async with self.session.get(url, headers=headers, timeout=timeout) as resp:
                if resp.status == 404:
                    return None
                if resp.status == 200:
                    return dict(await resp.json())
                await _refusal(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"the worker did not answer ({type(exc).__name__})") from exc

    async def consent(self, authorization: str, user_id: str) -> dict[str, Any] | None:
        """The user's preferences record where the worker holds it (None: none stored);
        WorkerUnavailable when no answer comes within the check timeout."""
        url = f"{self.base_url}/v1/users/{user_id}/consent"
        headers = {**self.headers, "Authorization": authorization}
        timeout = aiohttp.ClientTimeout(total=self.check_timeout_s)
        try:
            async with self.session.get(url, headers=headers, timeout=timeout) as resp:
                if resp.status == 200:
                    stored = (await resp.json())["preferences"]
                    return None if stored is None else dict(stored)
                await _refusal(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"the worker did not answer ({type(exc).__name__})") from exc

    async def profile(
        self, authorization: str, user_id: str, via: str = "recipient"
    ) -> dict[str, Any] | None:
        """The user's profile where the worker holds it (None: none stored), by the public
        route (`profile`: 404 when absent) or the door's internal one (`recipient`)."""
        url = f"{self.base_url}/v1/users/{user_id}/{via}"
        headers = {**self.headers, "Authorization": authorization}
        # The worker may wait for its profiles table to catch up (read-your-writes).
        timeout = aiohttp.ClientTimeout(total=self.read_catch_up_s + _MARGIN_S)
        try:
            async with self.session.get(url, headers=headers, timeout=timeout) as resp:
                if resp.status == 404 and via == "profile":
                    return None
                if resp.status == 200:
                    found = await resp.json()
                    stored = found.get("profile") if via == "recipient" else found
                    return None if stored is None else dict(stored)
                await _refusal(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"the worker did not answer ({type(exc).__name__})") from exc

    async def reserved(self, authorization: str, message_id: str, body: str) -> Seen | None:
        """The worker's idempotency decision; None when it does not answer in time."""
        url = f"{self.base_url}/v1/notifications/{message_id}/reservation"
        timeout = aiohttp.ClientTimeout(total=self.check_timeout_s)
        try:
            async with self.session.get(
                url, params={"fingerprint": body},
                headers={**self.headers, "Authorization": authorization}, timeout=timeout,
            ) as resp:  # fmt: skip
                if resp.status == 200:
                    return Seen((await resp.json())["seen"])
                log.info("ingress.idempotency-unchecked", status=resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("ingress.idempotency-unchecked", error=type(exc).__name__)
        return None


async def _refusal(resp: aiohttp.ClientResponse) -> NoReturn:
    """Raise for an answer that is not the state: 503 `rebalancing` or `state-behind` as
    such, else unavailable."""
    if resp.status == 503 and resp.content_type == "application/problem+json":
        problem = await resp.json(content_type=None)
        if isinstance(problem, dict) and problem.get("type") in _PASSED_ON:
            raise _PASSED_ON[problem["type"]](str(problem.get("detail", "the worker is busy")))
    raise WorkerUnavailable(f"the worker answered {resp.status}")
