"""The README says what the code does: the topology as `herald topology` prints it, the
version as the package declares it, no document outside the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import pipeline
from herald.worker import build_worker
from pipeline.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(marker: str) -> str:
    """The fenced block right after `<!-- marker -->` in the README."""
    text = README.read_text()
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```text\n(.*?)```", text, re.S)
    assert found, f"the README has no block marked <!-- {marker} -->"
    return found.group(1)


def test_the_readme_topology_is_what_herald_topology_prints(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {}, table_store="memory://", jwt_secret="x" * 32, worker_datadir=tmp_path
    )
    printed = build_worker(settings, session=None).topology.describe()
    assert readme_block("herald topology").rstrip("\n") == printed.rstrip("\n")


def test_versions_agree() -> None:
    project = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]
    changelog = re.search(r"## Changelog\s+- (\d+\.\d+\.\d+):", README.read_text())
    assert changelog, "the README's changelog has no version line"
    assert project["version"] == pipeline.__version__ == changelog.group(1)


@pytest.mark.parametrize("doc", ["README.md", "bench/README.md", "docs/providers.md"])
def test_no_document_points_outside_the_repository(doc: str) -> None:
    text = (README.parent / doc).read_text()
    assert "../shared" not in text and "/work/" not in text
