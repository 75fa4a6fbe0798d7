"""Shared test setup. Fixtures live in per-area plugin modules listed here."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures_core",
    "tests.fixtures_ledger",
    "tests.fixtures_pg",
    "tests.fixtures_temporal",
    "tests.fixtures_nas",
    "tests.fixtures_serve",
]


@pytest.fixture(autouse=True)
def _no_third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only built-in providers unless a test opts in (monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS"))."""
    monkeypatch.setenv("CRONPLAN_DISABLE_PLUGINS", "1")
    for var in ("CRONPLAN_CONFIG", "NO_COLOR", "FORCE_COLOR", "GITHUB_ACTIONS"):
        monkeypatch.delenv(var, raising=False)
