"""JWT bearer tokens: HS256 with a shared secret, RS256/ES256 from a JWKS file; scopes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pipeline.exceptions import AuthError, ConfigError, ScopeError
from pipeline.http.auth import Principal, TokenVerifier, issue_token

SECRET = "unit-test-secret-0123456789abcdef"
OTHER_SECRET = "another-secret-0123456789abcdefgh"


def claims(**changes: Any) -> dict[str, Any]:
    base = {"sub": "svc", "tenant": "acme", "scope": "notifications:send notifications:read"}
    out = {**base, "exp": int(time.time()) + 600, **changes}
    return {k: v for k, v in out.items() if v is not None}


def bearer(payload: dict[str, Any], key: Any = SECRET, alg: str = "HS256", **headers: Any) -> str:
    return "Bearer " + jwt.encode(payload, key, algorithm=alg, headers=headers or None)


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(secret=SECRET)


def test_good_token_gives_the_principal(verifier: TokenVerifier) -> None:
    assert verifier.verify(bearer(claims())) == Principal(
        "acme", frozenset({"notifications:send", "notifications:read"}), "svc"
    )


def test_issued_token_verifies(verifier: TokenVerifier) -> None:
    principal = verifier.verify("Bearer " + issue_token(SECRET, "acme", "users:manage"))
    assert (principal.tenant, principal.scopes) == ("acme", frozenset({"users:manage"}))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer ", id="no-token"),
        pytest.param("Bearer not.a.jwt", id="malformed"),
        pytest.param(bearer(claims(exp=int(time.time()) - 60)), id="expired"),
        pytest.param(bearer(claims(), key=OTHER_SECRET), id="wrong-signature"),
        pytest.param(bearer(claims(), key=None, alg="none"), id="alg-none"),
        pytest.param(bearer(claims(exp=None)), id="no-exp"),
        pytest.param(bearer({**claims(), "exp": None}), id="null-exp"),
        pytest.param(bearer(claims(tenant=None)), id="no-tenant"),
        pytest.param(bearer(claims(tenant="")), id="empty-tenant"),
        pytest.param(bearer(claims(tenant=42)), id="tenant-not-string"),
        pytest.param(bearer(claims(tenant="acme:other")), id="tenant-colon"),
        pytest.param(bearer(claims(scope=["admin"])), id="scope-not-string"),
    ],
)
def test_bad_authorization_is_rejected(verifier: TokenVerifier, authorization: str | None) -> None:
    with pytest.raises(AuthError):
        verifier.verify(authorization)


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        pytest.param({"iss": "https://idp.test", "aud": "herald"}, True, id="matching"),
        pytest.param({"iss": "https://evil.test", "aud": "herald"}, False, id="wrong-issuer"),
        pytest.param({"iss": "https://idp.test", "aud": "other"}, False, id="wrong-audience"),
        pytest.param({"iss": "https://idp.test"}, False, id="no-audience"),
    ],
)
def test_issuer_and_audience(changes: dict[str, Any], ok: bool) -> None:
    strict = TokenVerifier(secret=SECRET, issuer="https://idp.test", audience="herald")
    token = bearer(claims(**changes))
    if ok:
        assert strict.verify(token).tenant == "acme"
    else:
        with pytest.raises(AuthError):
            strict.verify(token)


def test_require_checks_scopes() -> None:
    sender = Principal("acme", frozenset({"notifications:send"}))
    sender.require("notifications:send")
    with pytest.raises(ScopeError, match="notifications:read"):
        sender.require("notifications:read")
    Principal("acme", frozenset({"admin"})).require("templates:manage")


@pytest.mark.parametrize(
    ("secret", "scope", "match"),
    [
        pytest.param(SECRET, "notifications:send root", "root", id="unknown-scope"),
        pytest.param("x" * 31, "notifications:send", "32", id="short-secret"),
    ],
)
def test_issue_token_rejects(secret: str, scope: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        issue_token(secret, "acme", scope)


@pytest.mark.parametrize("secret", ["", "x" * 31], ids=["none", "short"])
def test_verifier_needs_a_usable_key(secret: str) -> None:
    with pytest.raises(ConfigError):
        TokenVerifier(secret=secret)


KEYS = {
    "RS256": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "ES256": (lambda: ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
}


@pytest.fixture(scope="module", params=sorted(KEYS))
def jwks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(algorithm, private key, JWKS path with the public key as kid `k1`)."""
    generate, algorithm = KEYS[request.param]
    private = generate()
    jwk = {**json.loads(algorithm.to_jwk(private.public_key())), "kid": "k1", "use": "sig"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return request.param, private, path


def test_jwks_token_verifies(jwks: Any) -> None:
    alg, private, path = jwks
    principal = TokenVerifier(jwks_file=path).verify(bearer(claims(), private, alg, kid="k1"))
    assert principal.tenant == "acme"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda alg, key: bearer(claims(), key, alg, kid="k2"), id="unknown-kid"),
        pytest.param(lambda alg, key: bearer(claims(), key, alg), id="no-kid"),
        pytest.param(lambda alg, key: bearer(claims(), SECRET, kid="k1"), id="hs256-downgrade"),
        pytest.param(
            lambda alg, key: bearer(claims(exp=int(time.time()) - 60), key, alg, kid="k1"),
            id="expired",
        ),
    ],
)
def test_jwks_rejects(jwks: Any, make: Any) -> None:
    alg, private, path = jwks
    with pytest.raises(AuthError):
        TokenVerifier(jwks_file=path).verify(make(alg, private))


def test_jwks_rejects_a_token_signed_by_another_key(jwks: Any) -> None:
    alg, _, path = jwks
    other = KEYS[alg][0]()
    with pytest.raises(AuthError):
        TokenVerifier(jwks_file=path).verify(bearer(claims(), other, alg, kid="k1"))


def test_empty_jwks_fails_with_a_herald_error(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    with pytest.raises((ConfigError, AuthError)):
        TokenVerifier(jwks_file=path).verify(bearer(claims()))


def test_bearer_scheme_is_case_insensitive(verifier: TokenVerifier) -> None:
    token = bearer(claims()).removeprefix("Bearer ")
    assert verifier.verify(f"bearer {token}").tenant == "acme"


def test_a_remembered_token_is_refused_once_it_expires(verifier: TokenVerifier) -> None:
    exp = int(time.time()) + 1
    token = bearer(claims(exp=exp))
    first = verifier.verify(token)
    assert verifier.verify(token) == first  # remembered: the same principal
    time.sleep(max(0.0, exp - time.time()) + 0.05)  # at most 1 s
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token)


def test_only_verified_tokens_are_remembered(verifier: TokenVerifier) -> None:
    forged = bearer(claims(), key=OTHER_SECRET)
    for _ in range(2):
        with pytest.raises(AuthError):
            verifier.verify(forged)
