"""Fixtures: temporal (plugin module listed in tests/conftest.py)."""

from __future__ import annotations
