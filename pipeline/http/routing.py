"""A worker's door asks the worker that holds a key, at most one hop away.

With several workers in one group, a message's state and a user's preferences live in
the tables of whichever worker owns their partition (`pipeline.kafka.owners`). A
worker's door that does not own the key asks the owner over its HTTP, with the
caller's own token (the owner checks it again) and the header `Herald-Forwarded`: a
forwarded request is answered where it lands, never forwarded again, so a read costs
at most one extra hop even while two workers disagree about the assignment. Where it
lands and the key is neither there nor known to be absent (the partition moved, a
rebalance is under way), the answer is 503 `rebalancing`, never a false 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
from yarl import URL

from pipeline.http.worker_client import WorkerClient
from pipeline.kafka.owners import Placement

__all__ = ["FORWARDED", "Placements", "Router", "next_hop", "same_worker", "was_forwarded"]

FORWARDED = "Herald-Forwarded"  # on a request one worker forwards to another


def was_forwarded(headers: Mapping[str, str]) -> bool:
    """Whether another worker forwarded this request (then it is answered here)."""
    return FORWARDED in headers


def same_worker(a: str, b: str) -> bool:
    """Two advertised URLs name the same worker (scheme, host and port)."""
    ua, ub = URL(a), URL(b)
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)


def next_hop(placement: Placement, *, forwarded: bool, own_url: str) -> str | None:
    """The owner's URL to ask, or None to answer here.

    Here: a request already forwarded (one hop at most), a key this worker owns, a key
    nobody owns yet (a rebalance: the local answer decides between state and 503), or an
    assignment that names this very worker.
    """
    if forwarded or placement.local or placement.owner is None:
        return None
    if same_worker(placement.owner, own_url):
        return None
    return placement.owner


class Placements(Protocol):
    """Where keys live (`pipeline.kafka.owners.Owners`, or a stand-in in tests)."""

    @property
    def own_url(self) -> str: ...

    def settled(self) -> bool: ...

    def place(self, table: Any, key: str) -> Placement: ...


class Router:
    """The door's view of its peers: whom to ask for a key, and whether it holds it."""

    def __init__(
        self, placements: Placements, session: aiohttp.ClientSession, *, check_timeout_s: float,
        read_catch_up_s: float = 10.0,
    ) -> None:  # fmt: skip
        self.placements = placements
        self.session = session
        self.check_timeout_s = check_timeout_s
        self.read_catch_up_s = read_catch_up_s
        self._peers: dict[str, WorkerClient] = {}  # per advertised URL, made when first asked

    def peer(self, table: Any, key: str, *, forwarded: bool) -> WorkerClient | None:
        """The client of the worker to ask for `key`, or None to answer from here."""
        placements = self.placements
        url = next_hop(placements.place(table, key), forwarded=forwarded,
                       own_url=placements.own_url)  # fmt: skip
        if url is None:
            return None
        if url not in self._peers:
            self._peers[url] = WorkerClient(
                self.session, url, self.check_timeout_s, headers={FORWARDED: "1"},
                read_catch_up_s=self.read_catch_up_s,
            )  # fmt: skip
        return self._peers[url]

    def holds(self, table: Any, key: str) -> bool:
        """Whether a key absent here is absent everywhere: this worker owns its partition
        and serves its tables (no rebalance, no recovery under way)."""
        return self.placements.place(table, key).local and self.placements.settled()
