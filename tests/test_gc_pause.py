"""The collector pause around bulk work, and what it leaves behind when it ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cronplan._gc import BULK_OBJECTS, gc_paused


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not was:
        gc.disable()


def _bulk() -> list[list[int]]:
    return [[i] for i in range(BULK_OBJECTS * 2)]


def test_pause_disables_and_restores_and_nests() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused(freeze_survivors=True):
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the outermost block resumes
    assert gc.isenabled()


def test_an_already_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with gc_paused(freeze_survivors=True):
        kept = _bulk()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    del kept


def test_bulk_survivors_are_frozen_only_when_asked() -> None:
    gc.collect()
    with gc_paused():
        plain = _bulk()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0

    with gc_paused(freeze_survivors=True):
        frozen = _bulk()
    assert gc.isenabled()
    # What the pause left behind sits in the permanent generation, which no collection walks.
    assert gc.get_freeze_count() >= len(frozen)
    assert gc.get_count()[0] < BULK_OBJECTS
    del plain, frozen


def test_a_small_pause_freezes_nothing() -> None:
    gc.collect()
    with gc_paused(freeze_survivors=True):
        small = [[i] for i in range(100)]
    assert gc.get_freeze_count() == 0
    del small
