"""The ingress's view of `herald.users.preferences`: every partition, from the beginning.

The topic is compacted and keyed by `tenant:userId`, so the latest record per key
is the user's consent. An ingress has no tables (no Faust), so it reads the whole
topic into memory with a consumer of its own (assigned, not in a group) and keeps
reading; `caught_up` is true once it has read up to the end offsets it found when
it started, which is when its answer of 403 opted-out matches the worker's.
The records are checked as the worker's preferences stage checks them (a key that
is not the record's own tenant:userId is ignored here; the worker dead-letters it).
"""

from __future__ import annotations

from typing import Any

from pipeline.domain.tenancy import check_keyed_record, check_user_key
from pipeline.exceptions import DecodeError
from pipeline.kafka.catalog import PREFERENCES
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.compacted_view import CompactedView

__all__ = ["PreferencesView"]

_USER_KEY_RULE = "tenant:userId"


class PreferencesView(CompactedView):
    """Latest preferences per `tenant:userId`, fed by `apply` (and `run`, from Kafka)."""

    client_id = "herald-ingress-preferences"

    def __init__(self, codec: AvroCodec, topic: str = PREFERENCES) -> None:
        super().__init__(topic)
        self.codec = codec
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def apply(self, key: bytes | str | None, value: bytes | None) -> None:
        """One record of the topic: store its preferences, or erase them for a tombstone."""
        text = key.decode(errors="replace") if isinstance(key, bytes) else key
        if value is None:
            if check_user_key(text) is None and text is not None:
                self.records.pop(text, None)
            return
        try:
            record = self.codec.decode("UserPreferences", value)
        except DecodeError:
            return  # the worker dead-letters it
        if check_keyed_record(_USER_KEY_RULE, record, text) is None and text is not None:
            self.records[text] = record
