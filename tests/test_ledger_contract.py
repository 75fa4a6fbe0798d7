"""The ledger contract (tests/ledger_contract.py), once per backend in ``tests/fixtures_ledger.py``."""

from __future__ import annotations

from tests.ledger_contract import LedgerContract


class TestLedgerContract(LedgerContract):
    pass
