"""Masking the password of a ledger URL (a leaf: the ledger and both backends use it)."""

from __future__ import annotations


def mask_dsn(dsn: str) -> str:
    """Hide the password of a URL-style or key=value DSN."""
    import re

    # Up to the last '@': a password may hold '@' (and ':' or '/') itself.
    dsn = re.sub(r"(://[^:/@]*:).*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.IGNORECASE)
