"""Groups for a provider's batch API: what one batch call may carry.

A batch carries messages the provider accepts in a batch (`batchable`), to distinct
addresses (one personalization per recipient: SendGrid refuses a duplicate `to`), at
most `max_size` of them. What does not fit a batch goes alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["SENDGRID_MAX_PERSONALIZATIONS", "group_for_batches"]

T = TypeVar("T")

SENDGRID_MAX_PERSONALIZATIONS = 1000


def group_for_batches(
    items: Sequence[T],
    *,
    address: Callable[[T], str],
    batchable: Callable[[T], bool],
    max_size: int = SENDGRID_MAX_PERSONALIZATIONS,
) -> list[list[T]]:
    """`items` in groups, in arrival order: batch groups first, then the singles."""
    groups: list[list[T]] = []
    addresses: list[set[str]] = []
    singles: list[list[T]] = []
    for item in items:
        if not batchable(item):
            singles.append([item])
            continue
        to = address(item).lower()
        for group, seen in zip(groups, addresses, strict=True):
            if len(group) < max_size and to not in seen:
                group.append(item)
                seen.add(to)
                break
        else:
            groups.append([item])
            addresses.append({to})
    return groups + singles
