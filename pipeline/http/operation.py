"""What a route is: its method and path, handler, scope, body, answers and problems.

`pipeline.http.routes` declares every route with these; the ingress registers them
(`pipeline.http.api`) and `/openapi.json` describes them (`pipeline.http.openapi`).
Problems that follow from a declaration are added here, not by hand: a scope brings
401 and 403, a validated body 400, 413 and 422, a metered route 429.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from pipeline.http.context import Handler
from pipeline.http.problems import (
    FORBIDDEN,
    INVALID,
    MALFORMED,
    QUOTA,
    TOO_LARGE,
    UNAUTHORIZED,
    ProblemKind,
)

__all__ = ["Answer", "Operation", "Param", "RawBody"]


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter (documented; path values reach the handler)."""

    name: str
    where: Literal["path", "query", "header"]
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class RawBody:
    """A body the handler reads itself (a provider's signed bytes): documented, not validated."""

    description: str
    media: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class Answer:
    """A successful answer: a JSON model, or another media type with its schema."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media: str = "application/json"
    schema: dict[str, Any] = field(default_factory=dict)
    headers: tuple[Param, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One route: how it is called, who may call it, what it answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    answers: tuple[Answer, ...]
    scope: str | None = None
    body: type[BaseModel] | RawBody | None = None
    problems: tuple[ProblemKind, ...] = ()
    params: tuple[Param, ...] = ()
    description: str = ""
    metered: bool = False  # counted against the caller's tenant quota (429 beyond it)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def problem_kinds(self) -> tuple[ProblemKind, ...]:
        """Every problem it may answer: the declared ones and those its declaration implies."""
        implied: list[ProblemKind] = []
        if self.scope is not None:
            implied += [UNAUTHORIZED, FORBIDDEN]
        if isinstance(self.body, type):
            implied += [MALFORMED, TOO_LARGE, INVALID]
        elif self.body is not None:
            implied.append(TOO_LARGE)
        if self.metered:
            implied.append(QUOTA)
        return tuple(dict.fromkeys([*implied, *self.problems]))
