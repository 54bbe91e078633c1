"""The FCM adapter end to end against the simulator, and its service-account tokens."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.exceptions import (
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers import Fcm, ServiceAccountToken, StaticToken, build_providers
from pipeline.settings import Settings

from .adapterkit import expect, fcm_push, msg
from .simkit import simulator


async def test_fcm_push_is_accepted_with_the_join_keys_in_data() -> None:
    async with simulator() as sim:
        accepted = await fcm_push(sim).send(
            msg("push", "device-token-1", subject="Gate change", message_id="m-p")
        )
        assert accepted.provider_message_id.startswith("projects/herald-sim/messages/")
        [sent] = sim.recorded("fcm")
        assert sent["to"] == "device-token-1" and sent["channel"] == "push"
        assert sent["content"]["data"] == {"messageId": "m-p", "tenant": "acme"}
        assert sent["content"]["notification"]["title"] == "Gate change"


async def test_fcm_rejections() -> None:
    async with simulator() as sim:
        adapter = fcm_push(sim)
        await expect(
            RecipientUnreachable, adapter.send(msg("push", "unregistered-abc")), "UNREGISTERED"
        )
        await expect(InvalidData, adapter.send(msg("push", "invalid-abc")), "INVALID_ARGUMENT")
        big = msg("push", "device-token-1", text="x" * 5000)
        await expect(InvalidData, adapter.send(big), "payload-too-large")
        await expect(
            ProviderAuthError,
            fcm_push(sim, StaticToken("nope")).send(msg("push", "t")),
            "UNAUTHENTICATED",
        )
        assert sim.recorded() == []


@pytest.mark.parametrize(
    ("fail", "code", "retry"),
    [("429", "QUOTA_EXCEEDED", 1.0), ("5xx", "INTERNAL", None), ("down", "503", None)],
)
async def test_fcm_faults(fail: str, code: str, retry: float | None) -> None:
    async with simulator() as sim:
        await sim.fault("fcm", fail=fail)
        kind = RateLimited if fail == "429" else TransientError
        error = await expect(kind, fcm_push(sim).send(msg("push", "t-1")), code)
        assert error.retry_after == retry


# FCM service-account tokens (OAuth2 JWT bearer against the simulator's /token).


def service_account(path: Path, token_uri: str, key: rsa.RSAPrivateKey | None = None) -> Path:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    path.write_bytes(orjson.dumps({
        "type": "service_account", "project_id": "herald-sim", "private_key_id": "k1",
        "private_key": pem, "client_email": "herald@herald-sim.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }))  # fmt: skip
    return path


async def test_fcm_service_account_token_is_exchanged_cached_and_refreshed(tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    service_account(key_file, "placeholder")
    async with simulator(Settings(fcm_service_account_file=key_file)) as sim:
        # The token client's clock starts an hour back (assertions still valid for 30 s),
        # so moving it to the real time later is past the cached token's expiry.
        clock = [time.time() - 3570]
        tokens = ServiceAccountToken(
            key_file, f"{sim.url}/token", sim.session, clock=lambda: clock[0]
        )
        adapter = fcm_push(sim, tokens)
        await adapter.send(msg("push", "t-1"))
        await adapter.send(msg("push", "t-2"))
        assert len(sim.state.fcm_tokens) == 1  # one exchange, then the cache
        clock[0] = time.time()  # past expiry (minus the margin): a new exchange
        await adapter.send(msg("push", "t-3"))
        assert len(sim.state.fcm_tokens) == 2
        sim.state.fcm_tokens.clear()  # FCM no longer takes the cached token: refresh, once
        await adapter.send(msg("push", "t-4"))
        assert len(sim.state.fcm_tokens) == 1
        assert [m["to"] for m in sim.recorded("fcm")] == ["t-1", "t-2", "t-3", "t-4"]


async def test_fcm_service_account_with_the_wrong_key_is_an_auth_error(tmp_path: Path) -> None:
    registered = service_account(tmp_path / "sa.json", "placeholder")
    async with simulator(Settings(fcm_service_account_file=registered)) as sim:
        impostor = service_account(tmp_path / "other.json", f"{sim.url}/token")
        adapter = fcm_push(sim, ServiceAccountToken(impostor, None, sim.session))
        await expect(ProviderAuthError, adapter.send(msg("push", "t-1")), "oauth")
        assert sim.recorded() == [] and sim.state.fcm_tokens == {}


async def test_build_providers_uses_the_service_account_file(tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    async with simulator() as sim:
        service_account(key_file, f"{sim.url}/token")
        settings = sim.settings.with_(fcm_service_account_file=key_file)
        [push] = build_providers(settings, sim.session)["push"]
        assert isinstance(push, Fcm) and isinstance(push.token_provider, ServiceAccountToken)
        await push.send(msg("push", "t-1"))  # simulator without the file: claims checked only
        assert len(sim.state.fcm_tokens) == 1


async def test_a_token_exchange_that_times_out_leaves_no_push_in_doubt(tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    service_account(key_file, "placeholder")

    class Unanswered:
        """The token endpoint took the request and gave no answer in time."""

        async def post(self, url: str, **_kw: object) -> object:
            raise ProviderTimeout("timeout", provider="fcm", code="timeout", in_doubt=True)

    async with simulator(Settings(fcm_service_account_file=key_file)) as sim:
        tokens = ServiceAccountToken(key_file, f"{sim.url}/token", sim.session)
        tokens.http = Unanswered()  # type: ignore[assignment]
        with pytest.raises(ProviderTimeout) as raised:
            await fcm_push(sim, tokens).send(msg("push", "t-1"))
        assert sim.recorded("fcm") == []  # the push itself was never sent ...
    assert raised.value.in_doubt is False  # ... so it is not in doubt
