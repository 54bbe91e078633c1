"""Every provider's error table: each answer providers.md lists, by the provider's own
code, classified as Herald's retry policy needs it."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import pytest

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    RateLimited,
    TransientError,
)
from pipeline.providers import fcm, sendgrid, smtp, twilio, vonage, whatsapp
from pipeline.providers.errors import ErrorTable, http_keys
from pipeline.providers.transport import Answer, retry_after

from .adapterkit import BAD, A, R, T, U

# Classification tables: every answer providers.md lists, by the provider's own code.


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 20429, R),
        (400, 21211, U),
        (400, 21614, U),
        (400, 21612, U),
        (400, 21635, U),
        (400, 21610, U),
        (400, 21608, U),
        (401, 20003, A),
        (500, 20500, T),
        (503, None, T),
        (429, None, R),
        (400, 21602, BAD),  # body required: our content
        (400, 21617, BAD),  # body too long
        (404, 20404, BAD),
        (403, None, A),
        (400, 63003, U),  # WhatsApp: not a WhatsApp user
        (400, 63016, U),  # WhatsApp: outside the 24 h window
        (400, 63024, U),  # WhatsApp: invalid recipient
        (429, 63018, R),  # WhatsApp: channel rate limit
        (400, 63018, R),  # a rate limit whatever the HTTP status
    ],
)
def test_twilio_classification(status: int, code: int | None, expected: type) -> None:
    body = {"code": code, "message": "m", "status": status} if code else {}
    error = twilio.classify(status, body, {})
    assert type(error) is expected
    assert error.code == str(code or status) and error.provider == "twilio"


def test_twilio_rate_limit_carries_retry_after() -> None:
    error = twilio.classify(429, {"code": 20429}, {"Retry-After": "3"}, provider="twilio-whatsapp")
    assert isinstance(error, TransientError) and error.retry_after == 3.0
    assert error.provider == "twilio-whatsapp"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("1", R), ("5", T), ("10", T), ("2", BAD), ("3", BAD), ("6", BAD), ("12", BAD), ("4", A),
     ("8", A), ("9", A), ("7", U), ("29", U), ("33", U)],
)  # fmt: skip
def test_vonage_classification(status: str, expected: type) -> None:
    body = {"message-count": "1", "messages": [{"status": status, "error-text": "x"}]}
    error = vonage.classify(200, body, {"Retry-After": "2"})
    assert type(error) is expected and error is not None and error.code == status
    if expected is T:
        assert error.retry_after == 2.0


def test_vonage_success_and_http_level_answers() -> None:
    ok = {"message-count": "1", "messages": [{"status": "0", "message-id": "0A1"}]}
    assert vonage.classify(200, ok) is None
    assert isinstance(vonage.classify(500, {}), TransientError)
    assert isinstance(vonage.classify(429, {}), TransientError)
    assert isinstance(vonage.classify(401, {}), ProviderAuthError)
    bare = vonage.classify(200, {"status": "4", "error-text": "Bad Credentials"})
    assert isinstance(bare, ProviderAuthError) and bare.code == "4"
    second_part_failed = {"messages": [{"status": "0"}, {"status": "1"}]}
    assert isinstance(vonage.classify(200, second_part_failed), TransientError)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 130429, R),
        (400, 131056, R),
        (400, 4, R),
        (400, 80007, R),
        (400, 131026, U),
        (400, 131047, U),
        (400, 131049, U),
        (401, 0, A),
        (401, 190, A),
        (500, 131000, T),
        (503, 133004, T),
        (400, 100, BAD),
        (500, 100, BAD),  # keyed on the code, not the status
        (400, 132001, BAD),  # template does not exist
        (500, 1, T),
        (502, None, T),
        (403, 200, A),  # a permission code the table does not list: the status decides
    ],
)
def test_whatsapp_classification(status: int, code: int | None, expected: type) -> None:
    body = (
        {"error": {"message": "m", "type": "OAuthException", "code": code}}
        if code is not None
        else {}
    )
    error = whatsapp.classify(status, body, {})
    assert type(error) is expected
    assert error.code == str(code if code is not None else status)


def test_whatsapp_window_errors_say_what_to_do() -> None:
    window = whatsapp.classify(400, {"error": {"code": 131047}})
    assert "template" in str(window)
    cap = whatsapp.classify(400, {"error": {"code": 131049}})
    assert "24 h" in str(cap)
    limited = whatsapp.classify(400, {"error": {"code": 130429}}, {"Retry-After": "9"})
    assert limited.retry_after == 9.0


def fcm_error(status: int, canonical: str, code: str | None) -> dict[str, Any]:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
    return {"error": {"code": status, "message": "m", "status": canonical,
                      **({"details": details} if code else {})}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "canonical", "code", "expected"),
    [
        (404, "NOT_FOUND", "UNREGISTERED", U),
        (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", BAD),
        (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", A),
        (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", A),
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", R),
        (503, "UNAVAILABLE", "UNAVAILABLE", T),
        (500, "INTERNAL", "INTERNAL", T),
        (401, "UNAUTHENTICATED", None, A),  # our OAuth token rejected
        (400, "INVALID_ARGUMENT", None, BAD),
        (404, "NOT_FOUND", None, BAD),  # no FcmError detail: not the token's fault
    ],
)
def test_fcm_classification(status: int, canonical: str, code: str | None, expected: type) -> None:
    error = fcm.classify(status, fcm_error(status, canonical, code), {})
    assert type(error) is expected and error.code == (code or canonical)


@pytest.mark.parametrize("code", ["QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"])
def test_fcm_backoff_errors_carry_retry_after(code: str) -> None:
    error = fcm.classify(503, fcm_error(503, "UNAVAILABLE", code), {"Retry-After": "7"})
    assert isinstance(error, TransientError) and error.retry_after == 7.0


@pytest.mark.parametrize(
    ("code", "stage", "expected"),
    [
        (421, "connect", T),
        (450, "rcpt", T),
        (451, "data", T),
        (452, "rcpt", T),
        (455, "mail", T),
        (552, "rcpt", T),  # too many recipients: like 452
        (552, "data", BAD),  # message too big
        (550, "rcpt", U),
        (551, "rcpt", U),
        (553, "rcpt", U),
        (550, "mail", BAD),
        (553, "mail", BAD),
        (554, "data", BAD),
        (500, "mail", BAD),
        (501, "rcpt", BAD),
        (535, "auth", A),
        (534, "auth", A),
        (530, "mail", A),
        (454, "auth", T),  # temporary authentication failure
    ],
)
def test_smtp_classification(code: int, stage: str, expected: type) -> None:
    error = smtp.classify(code, "5.1.1 text", stage)
    assert type(error) is expected and error.code == str(code) and error.provider == "smtp"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after({"Retry-After": "12"}) == 12.0
    assert retry_after({}) is None and retry_after(None) is None
    assert retry_after({"Retry-After": "soon"}) is None
    later = retry_after({"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    assert later is not None and 25 <= later <= 31


# The ErrorTable itself: lookup order, retry hints, notes.

TABLE = ErrorTable(
    "p",
    {
        "42": RateLimited,
        "7": InvalidData,
        "HTTP 401": ProviderAuthError,
        "HTTP 5xx": TransientError,
    },
    notes={"42": "slow down"},
)


@pytest.mark.parametrize(
    ("status", "code", "expected", "why"),
    [
        (500, "7", InvalidData, "the provider's code decides before the HTTP status"),
        (401, "99", ProviderAuthError, "an unlisted code: the status"),
        (503, "", TransientError, "no status listed: its class (5xx)"),
        (404, "", InvalidData, "nothing listed: otherwise"),
        (401, "42", RateLimited, "the code again, over a listed status"),
    ],
)
def test_error_table_lookup_order(status: int, code: str, expected: type, why: str) -> None:
    error = TABLE.http_error(status, code, "m")
    assert type(error) is expected, why
    assert error.code == (code or str(status)) and error.provider == "p"


def test_error_table_keeps_retry_hints_on_retried_classes_only() -> None:
    assert TABLE.http_error(503, "", "m", retry_after=4.0).retry_after == 4.0
    assert TABLE.http_error(200, "42", "m", retry_after=4.0).retry_after == 4.0
    assert TABLE.http_error(401, "", "m", retry_after=4.0).retry_after is None
    assert TABLE.http_error(400, "", "m", retry_after=4.0).retry_after is None


def test_error_table_notes_replace_the_message_and_details_are_bounded() -> None:
    assert str(TABLE.error("42", "provider text")) == "42: slow down"
    assert str(TABLE.error("7", "x" * 1000)) == "7: " + "x" * 300
    assert TABLE.error("7", "m", provider="p-whatsapp").provider == "p-whatsapp"
    assert http_keys(503) == ("HTTP 503", "HTTP 5xx")


HTTP_TABLES = {
    "sendgrid": sendgrid.ERRORS,
    "twilio": twilio.ERRORS,
    "vonage": vonage.ERRORS,
    "whatsapp-cloud": whatsapp.ERRORS,
    "fcm": fcm.ERRORS,
}


@pytest.mark.parametrize("provider", list(HTTP_TABLES))
@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, R), (401, A), (403, A), (500, T), (502, T), (503, T), (400, BAD), (404, BAD)],
)
def test_every_http_table_reads_a_bare_status_alike(
    provider: str, status: int, expected: type
) -> None:
    """An answer without a provider code (a proxy's page, a gateway) is judged on its status."""
    error = HTTP_TABLES[provider].http_error(status, "", "<html>bad gateway</html>")
    assert type(error) is expected and error.code == str(status) and error.provider == provider


@pytest.mark.parametrize("provider", list(HTTP_TABLES))
def test_tables_name_only_delivery_errors_and_well_formed_keys(provider: str) -> None:
    table = HTTP_TABLES[provider]
    assert all(issubclass(cls, DeliveryError) for cls in table.classes.values())
    assert set(table.notes) <= set(table.classes)
    for key in table.classes:
        assert key.startswith("HTTP ") or " " not in key, key


@pytest.mark.parametrize(
    ("status", "expected", "hint"),
    [(429, TransientError, 3.0), (503, TransientError, 3.0), (400, ProviderAuthError, None),
     (401, ProviderAuthError, None)],
)  # fmt: skip
def test_fcm_token_exchange_errors(status: int, expected: type, hint: float | None) -> None:
    error = fcm.TOKEN_ERRORS.error(
        "oauth", "invalid_grant", keys=http_keys(status), retry_after=3.0
    )
    assert type(error) is expected and error.code == "oauth" and error.retry_after == hint


def test_sendgrid_reads_the_rate_limit_reset_only_on_a_429() -> None:
    reset = {"X-RateLimit-Reset": str(int(time.time()) + 30)}
    assert sendgrid.classify(429, "", reset).retry_after is not None
    assert sendgrid.classify(500, "", reset).retry_after is None  # every answer carries it


def test_an_answer_that_is_not_json_reads_as_an_empty_object() -> None:
    page = Answer(502, {"Retry-After": "5"}, b"<html>Bad Gateway</html>")
    assert page.json == {} and "Bad Gateway" in page.text and page.retry_after == 5.0
    assert Answer(200, {}, b"[1, 2]").json == {}
    error = twilio.classify(page.status, page.json, page.headers)
    assert type(error) is TransientError and error.code == "502" and error.retry_after == 5.0
