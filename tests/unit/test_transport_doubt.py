"""Which failed provider calls are in doubt: sent and unanswered, versus never made."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from pipeline.providers.transport import transport_error

pytestmark = pytest.mark.unit

KEY = ConnectionKey("api.example", 443, True, None, None, None, None)


@pytest.mark.parametrize(
    ("error", "in_doubt"),
    [
        (TimeoutError(), True),  # the request went out; no answer in time
        (aiohttp.ServerDisconnectedError(), True),  # dropped mid-call
        (aiohttp.ClientConnectorError(KEY, OSError(111, "refused")), False),  # never connected
        (aiohttp.ConnectionTimeoutError(), False),  # the connection was never made
    ],
)
def test_only_a_request_that_may_have_reached_the_provider_is_in_doubt(
    error: Exception, in_doubt: bool
) -> None:
    assert transport_error("sendgrid", error).in_doubt is in_doubt
