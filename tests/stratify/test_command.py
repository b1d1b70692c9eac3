"""`phm stratify`: everyone with --all (progress bar, counts per stratum), the marked patients
otherwise, and a malformed map refused with its place in the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("PHM_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    return db


def test_stratify_all_on_an_empty_database(sqlite_env: Path) -> None:
    result = CliRunner().invoke(cli, ["stratify", "--all", "--date", "2026-06-30"])
    assert result.exit_code == 0, result.output
    assert "stratified 0 patients" in result.output
    assert "healthy" in result.output
    again = CliRunner().invoke(cli, ["stratify"])
    assert again.exit_code == 0, again.output


def test_a_malformed_map_is_refused(sqlite_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "region.json"
    bad.write_text(
        '{"id": "x", "version": "1", "title": "t", "codeSystem": "http://x", '
        '"facts": {"age": {"kind": "age"}}, "strata": [{"code": "all", '
        '"display": "All", "when": {"fact": "age", "op": ">", "value": "old"}}]}'
    )
    result = CliRunner().invoke(cli, ["stratify", "--map", str(bad)])
    assert result.exit_code == 2
    assert "region.json: $.strata[0].when.value" in result.output
