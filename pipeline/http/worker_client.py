"""How an ingress asks the worker what only the worker knows, over the worker's HTTP.

A message's state lives in the worker's notification-state table, and a
client-chosen id's reservation in its idempotency table; `herald ingress` keeps no
tables, so it asks (`HERALD_WORKER_URL`) with the caller's own token, which the
worker checks again. The idempotency question has a short deadline
(`HERALD_WORKER_CHECK_TIMEOUT`): unanswered, the ingress accepts, and ingest,
which decides with the same table, dead-letters a conflicting body
(`idempotency-conflict`) and drops a duplicate.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog

from pipeline.domain.idempotency import Seen
from pipeline.exceptions import WorkerUnavailable

__all__ = ["WorkerClient"]

log = structlog.get_logger("herald.ingress")
_MARGIN_S = 5.0  # beyond a `Prefer: wait`, how long the worker may take to answer


class WorkerClient:
    """The worker's HTTP, seen from an ingress."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, check_timeout_s: float
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.check_timeout_s = check_timeout_s

    async def state(
        self, authorization: str, message_id: str, wait_s: float = 0.0
    ) -> dict[str, Any] | None:
        """The worker's answer to `GET /v1/notifications/{id}`: the state, or None (404)."""
        headers = {"Authorization": authorization}
        if wait_s:
            headers["Prefer"] = f"wait={wait_s:g}"
        url = f"{self.base_url}/v1/notifications/{message_id}"
        timeout = aiohttp.ClientTimeout(total=wait_s + _MARGIN_S)
        try:
            async with self.session.get(url, headers=headers, timeout=timeout) as resp:
                if resp.status == 404:
                    return None
                if resp.status == 200:
                    return dict(await resp.json())
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"the worker did not answer ({type(exc).__name__})") from exc
        raise WorkerUnavailable(f"the worker answered {status}")

    async def reserved(self, authorization: str, message_id: str, body: str) -> Seen | None:
        """The worker's idempotency decision; None when it does not answer in time."""
        url = f"{self.base_url}/v1/notifications/{message_id}/reservation"
        timeout = aiohttp.ClientTimeout(total=self.check_timeout_s)
        try:
            async with self.session.get(
                url, params={"fingerprint": body}, headers={"Authorization": authorization},
                timeout=timeout,
            ) as resp:  # fmt: skip
                if resp.status == 200:
                    return Seen((await resp.json())["seen"])
                log.info("ingress.idempotency-unchecked", status=resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("ingress.idempotency-unchecked", error=type(exc).__name__)
        return None
