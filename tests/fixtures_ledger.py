"""Fixtures: ledger (plugin module listed in tests/conftest.py).

``ledger_url`` is parametrized over the backends in ``LEDGER_BACKENDS``; every test written against
``ledger`` / ``ledger_factory`` (see ``tests/ledger_contract.py``) runs once per backend. A PostgreSQL
backend is added by appending ``"postgres"`` here; it takes its URL from a ``pg_dsn`` fixture (a fresh,
empty database per test, or ``pytest.skip`` when no server is available).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cronplan.ledger import Ledger, open_ledger

LEDGER_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=LEDGER_BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/ledger.db"
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    raise AssertionError(f"unknown ledger backend {request.param}")


@pytest.fixture
def ledger_factory(ledger_url: str, tmp_path: Path) -> Iterator[Callable[[], Ledger]]:
    """Opens another handle on the same store (as another process would); all closed at teardown."""
    opened: list[Ledger] = []

    def open_one() -> Ledger:
        handle = open_ledger(ledger_url, base_dir=str(tmp_path))
        opened.append(handle)
        return handle

    yield open_one
    for handle in opened:
        handle.close()


@pytest.fixture
def ledger(ledger_factory: Callable[[], Ledger]) -> Ledger:
    return ledger_factory()
