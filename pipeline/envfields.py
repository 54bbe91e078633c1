"""Dataclass fields that name their environment variable, and reading them from it.

Kept apart from `pipeline.settings`, which is the list of Herald's settings only: here is
how any such frozen dataclass is filled from the environment, with a clear ConfigError
for a value that is not of the field's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, fields
from pathlib import Path
from typing import Any

from pipeline.exceptions import ConfigError

__all__ = ["env_field", "values_from_env"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_field(env: str, default: Any) -> Any:
    """A dataclass field with `default`, read from the variable `env`."""
    return field(default=default, metadata={"env": env})


def values_from_env(cls: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of dataclass `cls` whose variable is set (and not empty) in `environ`,
    converted to the field's type."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        var = f.metadata["env"]
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        values[f.name] = _convert(var, raw, str(f.type))
    return values


def _convert(var: str, raw: str, typ: str) -> Any:
    if typ.startswith("bool"):
        flag = raw.strip().lower()
        if flag in _TRUE or flag in _FALSE:
            return flag in _TRUE
        raise ConfigError(f"{var}={raw!r} is not a valid bool (use 1 or 0)")
    try:
        if typ.startswith("int"):
            return int(raw)
        if typ.startswith("float"):
            return float(raw)
        if typ.startswith("Path"):
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"{var}={raw!r} is not a valid {typ}") from exc
    return raw
