"""JWT bearer tokens: HS256 with `HERALD_JWT_SECRET`, or RS256/ES256 keys from a JWKS file.

Claims: `tenant` (whose data the caller may touch) and `scope` (space-separated,
as in RFC 8693). `exp` is required.

A verifier remembers the tokens it has verified until they expire (the most recent
`REMEMBERED` of them): a client sends the same token with every call, and checking
its signature each time was a tenth of the door's CPU per request.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from pipeline.domain.tenancy import valid_tenant
from pipeline.exceptions import AuthError, ConfigError, ScopeError

__all__ = ["REMEMBERED", "SCOPES", "Principal", "TokenVerifier", "issue_token"]

REMEMBERED = 10_000  # verified tokens a verifier keeps, until each one's `exp`

SCOPES = (
    "notifications:send", "notifications:read", "users:manage",
    "templates:manage", "analytics:read", "admin",
)  # fmt: skip


@dataclass(frozen=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    subject: str = ""

    def require(self, scope: str) -> None:
        if scope not in self.scopes and "admin" not in self.scopes:
            raise ScopeError(f"this call needs the scope {scope!r}")


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str = "",
        jwks_file: Path | None = None,
        issuer: str = "",
        audience: str = "",
    ) -> None:
        self.issuer = issuer or None
        self.audience = audience or None
        self.keys: dict[str, Any] = {}
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        if jwks_file is not None:
            jwks = json.loads(Path(jwks_file).read_text())
            for jwk in jwks.get("keys", []):
                self.keys[jwk.get("kid", "")] = jwt.PyJWK(jwk)
            if not self.keys:
                raise ConfigError(f"{jwks_file} has no keys")
            self.algorithms = ["RS256", "ES256"]
        elif secret:
            if len(secret) < 32:
                raise ConfigError("HERALD_JWT_SECRET must be at least 32 characters")
            self.secret = secret
            self.algorithms = ["HS256"]
        else:
            raise ConfigError("set HERALD_JWT_SECRET (HS256) or HERALD_JWKS_FILE (RS256/ES256)")

    def verify(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive
            raise AuthError("missing bearer token")
        token = token.strip()
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]  # verified before, not expired since
        try:
            key: Any = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        tenant = claims.get("tenant")
        if not valid_tenant(tenant):  # the rule every Kafka stage applies too
            raise AuthError("token has no valid tenant claim")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise AuthError("the scope claim must be a space-separated string")
        principal = Principal(tenant, frozenset(scope.split()), str(claims.get("sub", "")))
        self._verified[token] = (principal, float(claims["exp"]))
        if len(self._verified) > REMEMBERED:
            self._verified.popitem(last=False)  # the oldest first
        return principal

    def _key_for(self, token: str) -> Any:
        if not self.keys:
            return self.secret
        kid = jwt.get_unverified_header(token).get("kid", "")
        jwk = self.keys.get(kid)
        if jwk is None:
            raise AuthError("unknown key id")
        return jwk.key


def issue_token(
    secret: str, tenant: str, scope: str, *, ttl_s: int = 24 * 3600, subject: str = "dev"
) -> str:
    """A development HS256 token (what `herald token` prints)."""
    if len(secret) < 32:
        raise ConfigError("HERALD_JWT_SECRET must be at least 32 characters")
    if not valid_tenant(tenant):
        raise ConfigError("a tenant is 1-128 letters, digits and ._@- (no ':')")
    unknown = set(scope.split()) - set(SCOPES)
    if unknown:
        raise ConfigError(f"unknown scopes: {', '.join(sorted(unknown))}")
    now = int(time.time())
    claims = {"sub": subject, "tenant": tenant, "scope": scope, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")
