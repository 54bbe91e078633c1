"""What `wire` declared, described as Kafka Streams describes a topology: the stages
with what each reads, which tables it uses and what it writes, the timers and the
tables. `herald topology` prints it; the README shows the same text (a test compares).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.runtime import Runtime

__all__ = ["LANE", "StageSpec", "TableSpec", "TimerSpec", "Topology", "ViewSpec"]


@dataclass(frozen=True)
class StageSpec:
    """One agent: its stable name, its source topic, its tables and its sinks."""

    name: str
    reads: str
    writes: tuple[str, ...]
    tables: tuple[str, ...] = ()  # tables it reads or writes
    family: str = ""  # stages that are one function on several topics share a family


@dataclass(frozen=True)
class TimerSpec:
    name: str
    every_s: float
    does: str
    writes: tuple[str, ...]


@dataclass(frozen=True)
class TableSpec:
    name: str
    changelog: str
    holds: str


@dataclass(frozen=True)
class ViewSpec:
    """A topic every process reads whole into memory (not split across the group)."""

    name: str
    topic: str
    holds: str


@dataclass
class Topology:
    """The stages, timers and tables `wire` declared (and the runtime the ingress shares)."""

    runtime: Runtime
    stages: list[StageSpec] = field(default_factory=list)
    timers: list[TimerSpec] = field(default_factory=list)
    table_specs: list[TableSpec] = field(default_factory=list)
    views: list[ViewSpec] = field(default_factory=list)

    @property
    def agents(self) -> dict[str, str]:
        """Agent name -> its source topic."""
        return {s.name: s.reads for s in self.stages}

    @property
    def tables(self) -> dict[str, str]:
        """Table name -> its changelog topic."""
        return {t.name: t.changelog for t in self.table_specs}

    @property
    def sinks(self) -> set[str]:
        """Every topic a stage or timer writes."""
        return {t for s in self.stages for t in s.writes} | {
            t for timer in self.timers for t in timer.writes
        }

    def describe(self) -> str:
        lines = ["Stages (agents), each reading one topic:", ""]
        seen: set[str] = set()
        for stage in self.stages:
            if stage.family and stage.family in seen:
                continue
            same = [s for s in self.stages if stage.family and s.family == stage.family]
            if same:
                seen.add(stage.family)
                lines.append(f"  {stage.family}  ({len(same)} lanes)")
                lines += _field("reads", _lanes([s.reads for s in same]))
            else:
                lines.append(f"  {stage.name}")
                lines += _field("reads", [stage.reads])
            lines += _field("tables", list(stage.tables))
            lines += _field("writes", _lanes(stage.writes))
        lines += ["", "Timers:", ""]
        for timer in self.timers:
            lines.append(f"  {timer.name}  (every {timer.every_s:g} s) {timer.does}")
            lines += _field("writes", _lanes(timer.writes))
        lines += ["", "Tables (RocksDB over compacted changelogs):", ""]
        width = max(len(t.name) for t in self.table_specs)
        for table in self.table_specs:
            lines.append(f"  {table.name:<{width}}  {table.changelog}")
            lines.append(f"  {'':<{width}}  {table.holds}")
        if self.views:
            lines += ["", "Views (every process that needs one reads the whole topic):", ""]
        for view in self.views:
            lines.append(f"  {view.name:<{width}}  {view.topic}")
            lines.append(f"  {'':<{width}}  {view.holds}")
        return "\n".join(lines) + "\n"


LANE = re.compile(r"^herald\.dispatch\.[a-z]+\.[a-z]+$")


def _lanes(topics: Sequence[str]) -> list[str]:
    """The channel lane topics as one pattern (they always come as the whole set)."""
    lanes = [t for t in topics if LANE.match(t)]
    if len(lanes) < 2:
        return list(topics)
    first = topics.index(lanes[0])
    rest = [t for t in topics if not LANE.match(t)]
    pattern = f"herald.dispatch.<channel>.<lane> ({len(lanes)} lanes)"
    return [*rest[:first], pattern, *rest[first:]]


def _field(label: str, values: list[str], width: int = 88) -> list[str]:
    """`label  a, b, c` wrapped under itself; nothing when there are no values."""
    if not values:
        return []
    out, line = [], f"    {label:<7}"
    for i, value in enumerate(values):
        piece = value + ("," if i < len(values) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip() != label:
            out.append(line.rstrip())
            line = " " * 11
        line += piece + " "
    out.append(line.rstrip())
    return out
