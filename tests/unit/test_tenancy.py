"""Tenants and record keys: one tenant rule for the JWT claim and Kafka records, and a
record key that must be the one the catalog derives from the record."""

from __future__ import annotations

import pytest

from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.tenancy import (
    Refusal,
    check_keyed_record,
    check_user_key,
    record_key,
    valid_tenant,
)
from pipeline.domain.validation import check_request
from pipeline.exceptions import ConfigError, ValidationError
from pipeline.http.auth import issue_token

RULE = "tenant:userId"


@pytest.mark.parametrize("tenant", ["acme", "a.b-c_d@e", "x" * 128])
def test_valid_tenants(tenant: str) -> None:
    assert valid_tenant(tenant)


@pytest.mark.parametrize("tenant", ["", "acme:x", "ac me", "x" * 129, None, 7, "é"])
def test_invalid_tenants(tenant: object) -> None:
    assert not valid_tenant(tenant)


def test_the_token_and_the_request_use_the_same_rule(
    templates: TemplateCatalog, make_request: object
) -> None:
    with pytest.raises(ConfigError):
        issue_token("s" * 32, "acme:x", "notifications:send")
    with pytest.raises(ValidationError) as caught:
        check_request(make_request(tenant="acme:x"), templates)  # type: ignore[operator]
    assert [e["field"] for e in caught.value.errors] == ["tenant"]


def test_a_request_is_keyed_by_its_recipients_user() -> None:
    record = {"tenant": "acme", "recipient": {"userId": "x:u"}}
    assert record_key(RULE, record) == "acme:x:u"
    assert check_keyed_record(RULE, record, b"acme:x:u") is None


def test_a_tenant_with_a_colon_is_refused_even_with_a_matching_key() -> None:
    # "globex:x" with user "u" would be keyed as tenant "globex", user "x:u".
    record = {"tenant": "globex:x", "recipient": {"userId": "u"}}
    refusal = check_keyed_record(RULE, record, b"globex:x:u")
    assert isinstance(refusal, Refusal) and refusal.reason == "invalid-tenant"
    assert "globex" not in refusal.error  # names the field, not the value


@pytest.mark.parametrize("key", [b"acme:u-2", b"globex:u-1", b"", None, b"acme"])
def test_a_key_that_is_not_the_records_own_is_a_mismatch(key: bytes | None) -> None:
    refusal = check_keyed_record(RULE, {"tenant": "acme", "userId": "u-1"}, key)
    assert refusal == Refusal("key-mismatch", "the record key is not tenant:userId of the record")


def test_an_invalid_user_is_refused() -> None:
    refusal = check_keyed_record(RULE, {"tenant": "acme", "userId": "a b"}, b"acme:a b")
    assert refusal is not None and refusal.reason == "invalid"


def test_a_tombstone_key() -> None:
    assert check_user_key(b"acme:x:u") is None
    assert check_user_key(b"acme") == Refusal(
        "invalid-tenant", "the key's tenant: 1-128 letters, digits and ._@-"
    )
    assert check_user_key(b"ac me:u") is not None and check_user_key(b"acme:") is not None
