"""Helpers for integration tests over a real broker: the local stack of child processes
(simulator and workers, `pipeline.devstack.processes`) with what tests ask of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from pipeline.devstack.processes import LocalStack, free_port, herald_cmd, stack_env, wait_for
from pipeline.http.auth import issue_token

__all__ = ["Stack", "free_port", "herald_cmd", "stack_env", "wait_for"]


@dataclass
class Stack(LocalStack):
    """A simulator and workers as child processes, on free ports, against one broker."""

    def token(self, tenant: str = "acme", scope: str = "notifications:send notifications:read",
              ttl_s: int = 3600) -> str:  # fmt: skip
        return issue_token(self.env["HERALD_JWT_SECRET"], tenant, scope, ttl_s=ttl_s)

    def headers(self, tenant: str = "acme", **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, **kw)}"}

    def fault(self, provider: str, **script: Any) -> None:
        resp = httpx.put(f"{self.sim}/_sim/faults/{provider}", json=script, timeout=5)
        assert resp.status_code == 204, resp.text

    def clear_faults(self) -> None:
        assert httpx.delete(f"{self.sim}/_sim/faults", timeout=5).status_code == 204

    def sim_messages(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {} if to is None else {"to": to}
        return list(httpx.get(f"{self.sim}/_sim/messages", params=params, timeout=5).json())

    def state(self, message_id: str, tenant: str = "acme") -> httpx.Response:
        return httpx.get(
            f"{self.api}/v1/notifications/{message_id}", headers=self.headers(tenant), timeout=5
        )

    def wait_status(self, message_id: str, status: str, tenant: str = "acme",
                    timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        """The state once `status` is in its history (it may have moved on since)."""

        def reached() -> dict[str, Any] | None:
            resp = self.state(message_id, tenant)
            if resp.status_code == 200 and status in [h["status"] for h in resp.json()["history"]]:
                return dict(resp.json())
            return None

        return wait_for(reached, timeout)

    def wait_status_in(self, message_id: str, statuses: set[str], tenant: str = "acme",
                       timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        def reached() -> dict[str, Any] | None:
            resp = self.state(message_id, tenant)
            if resp.status_code == 200 and resp.json()["status"] in statuses:
                return dict(resp.json())
            return None

        return wait_for(reached, timeout)
