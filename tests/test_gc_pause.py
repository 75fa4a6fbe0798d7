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


def test_loading_one_job_leaves_no_document_for_the_collector(tmp_path) -> None:
    """The pause ends after the parsed document is released: no collection walks the document, during
    the load or when the collector resumes (it used to resume between parsing and checking, and the
    next allocation walked all of it)."""
    import json

    from cronplan.documents.jobsfile import check_jobs, load_job

    path = tmp_path / "jobs.json"
    jobs = [
        {"id": f"j{i}", "schedule": {"kind": "interval", "seconds": 60}, "command": ["true"]}
        for i in range(20_000)
    ]
    path.write_text(json.dumps({"jobs": jobs}))
    del jobs
    young_at_collection: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            young_at_collection.append(gc.get_count()[0])

    gc.collect()
    gc.callbacks.append(record)
    try:
        job = load_job(path, "j123")
        assert check_jobs(path) == 20_000
        _ = [[i] for i in range(100)]  # allocations after the load would start a pending collection
    finally:
        gc.callbacks.remove(record)
    assert job is not None and job.id == "j123"
    assert gc.isenabled()
    # The document is over 100,000 objects; what is left to walk is the few the loader keeps.
    assert all(young < 5_000 for young in young_at_collection), young_at_collection
