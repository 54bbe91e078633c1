"""What one call to a provider's batch API may carry (`group_for_batches`)."""

from __future__ import annotations

from pipeline.domain.microbatch import group_for_batches


def groups(items: list[str], max_size: int = 1000) -> list[list[str]]:
    return group_for_batches(
        items, address=lambda i: i.split("#")[0], batchable=lambda i: not i.startswith("x"),
        max_size=max_size,
    )  # fmt: skip


def test_distinct_addresses_share_a_batch_in_arrival_order() -> None:
    assert groups(["a", "b", "c"]) == [["a", "b", "c"]]


def test_the_same_address_twice_goes_in_the_next_batch() -> None:
    assert groups(["a#1", "b", "A#2", "a#3"]) == [["a#1", "b"], ["A#2"], ["a#3"]]


def test_a_batch_holds_at_most_max_size() -> None:
    assert groups(["a", "b", "c", "d", "e"], max_size=2) == [["a", "b"], ["c", "d"], ["e"]]


def test_what_the_provider_cannot_batch_goes_alone_after_the_batches() -> None:
    assert groups(["x1", "a", "x2", "b"]) == [["a", "b"], ["x1"], ["x2"]]
