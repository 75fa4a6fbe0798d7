"""The built-in local provider: the shared provider contract, plus its store, timer-loop API and checks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cronplan.errors import AuthError
from cronplan.local.provider import LocalProvider
from cronplan.model import Arm, HttpRequest
from cronplan.provider import ProviderSettings
from tests.provider_contract import ProviderContract, SharedStateContract

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def settings(base: Path, **options: object) -> ProviderSettings:
    return ProviderSettings(name="local", options=options, base_dir=base, environ={})


@pytest.fixture
def local_factory(tmp_path: Path) -> Iterator[Callable[[], LocalProvider]]:
    opened: list[LocalProvider] = []

    def open_one() -> LocalProvider:
        p = LocalProvider(settings(tmp_path))
        opened.append(p)
        return p

    yield open_one
    for p in opened:
        p.close()


@pytest.fixture
def local(local_factory: Callable[[], LocalProvider]) -> LocalProvider:
    return local_factory()


class TestLocalProviderContract(ProviderContract, SharedStateContract):
    @pytest.fixture
    def provider(self, local: LocalProvider) -> LocalProvider:
        return local

    @pytest.fixture
    def provider_factory(
        self, local_factory: Callable[[], LocalProvider]
    ) -> Callable[[], LocalProvider]:
        return local_factory


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT job_id, fire_at, dedup_key, callback_url, updated_at FROM arms"
        ).fetchall()
    finally:
        conn.close()


def test_identity_and_default_path(tmp_path: Path, local: LocalProvider) -> None:
    assert (local.name, local.calls_back) == ("local", False)
    assert local.path == tmp_path / ".cronplan" / "local.db"
    assert not local.path.exists()  # constructing and checking create nothing
    assert local.check().ok
    assert not local.path.exists()
    local.arm(Arm("a", T0))
    assert local.path.is_file()


def test_path_option_relative_and_absolute(tmp_path: Path) -> None:
    rel = LocalProvider(settings(tmp_path, path="state/arms.db"))
    assert rel.path == tmp_path / "state" / "arms.db"
    absolute = LocalProvider(settings(tmp_path / "elsewhere", path=str(tmp_path / "abs.db")))
    assert absolute.path == tmp_path / "abs.db"


def test_same_arm_again_changes_nothing_not_even_updated_at(local: LocalProvider) -> None:
    local.arm(Arm("a", T0))
    before = _rows(local.path)
    generation = local.generation()
    time.sleep(0.01)
    local.arm(Arm("a", T0))
    assert _rows(local.path) == before
    assert local.generation() == generation
    assert before[0][2] == "a:2026-11-27T09:00:00Z"


def test_list_arms_sorted_by_job_id(local: LocalProvider) -> None:
    for job_id in ["c", "a", "b"]:
        local.arm(Arm(job_id, T0 - timedelta(minutes=ord(job_id))))
    assert [a.job_id for a in local.list_arms()] == ["a", "b", "c"]
    assert all(a.callback_url is None for a in local.list_arms())


def test_listed_arms_equal_constructed_ones_and_have_every_field(local: LocalProvider) -> None:
    """list_arms builds Arms without the dataclass __init__ (a bulk path): they must be whole Arms."""
    import dataclasses

    local.arm(Arm("a", T0, "http://127.0.0.1:1/cb"))
    (arm,) = local.list_arms()
    assert set(vars(arm)) == {f.name for f in dataclasses.fields(Arm)}
    assert arm == Arm("a", T0, "http://127.0.0.1:1/cb")
    with pytest.raises(dataclasses.FrozenInstanceError):
        arm.job_id = "b"  # type: ignore[misc]


def test_generation_changes_with_every_change_in_any_process(
    local: LocalProvider, local_factory: Callable[[], LocalProvider]
) -> None:
    other = local_factory()
    g0 = local.generation()
    other.arm(Arm("a", T0))
    g1 = local.generation()
    assert g1 != g0
    other.cancel("missing")  # no change
    assert local.generation() == g1
    other.arm(Arm("a", T0 + timedelta(minutes=1)))
    g2 = local.generation()
    assert g2 != g1
    other.cancel("a")
    assert local.generation() != g2


def test_generation_is_cheap_enough_to_poll(local: LocalProvider) -> None:
    local.arm(Arm("a", T0))
    started = time.perf_counter()
    for _ in range(200):
        local.generation()
    per_call = (time.perf_counter() - started) / 200
    assert per_call < 0.005, per_call


def test_earliest_due_and_cancel_at(local: LocalProvider) -> None:
    assert local.earliest() is None
    local.arm(Arm("late", T0 + timedelta(hours=2)))
    local.arm(Arm("b-soon", T0))
    local.arm(Arm("a-soon", T0))
    earliest = local.earliest()
    assert earliest is not None and (earliest.job_id, earliest.fire_at) == ("a-soon", T0)
    assert [a.job_id for a in local.due(T0)] == ["a-soon", "b-soon"]
    assert local.due(T0 - timedelta(seconds=1)) == []
    # Fired at T0 but re-armed meanwhile: the new arm survives.
    local.arm(Arm("a-soon", T0 + timedelta(hours=1)))
    assert local.cancel_at("a-soon", T0) is False
    assert local.cancel_at("b-soon", T0) is True
    assert {a.job_id: a.fire_at for a in local.list_arms()} == {
        "a-soon": T0 + timedelta(hours=1),
        "late": T0 + timedelta(hours=2),
    }


def test_arm_many_and_cancel_many(local: LocalProvider) -> None:
    arms = [Arm(f"j{i}", T0 + timedelta(seconds=i)) for i in range(50)]
    assert local.arm_many(arms) == 50
    assert local.arm_many(arms) == 0
    assert local.arm_many([Arm("j0", T0 + timedelta(days=1))]) == 1
    assert local.cancel_many([f"j{i}" for i in range(10)] + ["nope"]) == 10
    assert len(local.list_arms()) == 40


def test_verify_refuses_every_request(local: LocalProvider) -> None:
    request = HttpRequest(
        "POST", "/api/cron/fire", {}, b'{"job_id":"a","fire_at":"2026-11-27T09:00:00Z"}'
    )
    with pytest.raises(AuthError, match="sends no HTTP callbacks"):
        local.verify(request)


def test_check_reports_an_unusable_path(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "junk.db").write_text("definitely not sqlite")
    cases = {
        "a-file/local.db": "not a directory",
        "a-file/deeper/local.db": "not a directory",
        "a-dir": "is a directory",
        "junk.db": "not a SQLite database",
    }
    for path, message in cases.items():
        result = LocalProvider(settings(tmp_path, path=path)).check()
        assert not result.ok and message in result.detail, (path, result)
    bad_option = LocalProvider(settings(tmp_path, path=42)).check()
    assert not bad_option.ok and "providers.local.path" in bad_option.detail
    fresh = LocalProvider(settings(tmp_path, path="new/dirs/local.db")).check()
    assert fresh.ok and not (tmp_path / "new").exists()


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_bulk_apply_of_10k_arms_from_10_threads_is_fast(local: LocalProvider) -> None:
    arms = [Arm(f"job-{i:05d}", T0 + timedelta(seconds=i)) for i in range(10_000)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(local.arm, arms))
    elapsed = time.perf_counter() - started
    assert len(local.list_arms()) == 10_000
    assert elapsed < 10, f"10,000 arms took {elapsed:.1f}s"


@pytest.mark.timeout(120)
def test_concurrent_processes_arm_without_losing_any(tmp_path: Path, local: LocalProvider) -> None:
    script = textwrap.dedent(
        """
        import sys
        from datetime import datetime, timedelta, timezone
        from pathlib import Path
        from cronplan.local.provider import LocalProvider
        from cronplan.model import Arm
        from cronplan.provider import ProviderSettings
        base, worker = Path(sys.argv[1]), int(sys.argv[2])
        p = LocalProvider(ProviderSettings(name="local", base_dir=base))
        t0 = datetime(2026, 11, 27, 9, tzinfo=timezone.utc)
        for i in range(200):
            p.arm(Arm(f"w{worker}-{i}", t0 + timedelta(seconds=i)))
            p.arm(Arm("shared", t0 + timedelta(seconds=worker)))
        p.cancel(f"w{worker}-0")
        p.close()
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), str(w)], stderr=subprocess.PIPE, text=True
        )
        for w in range(5)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err
    arms = {a.job_id for a in local.list_arms()}
    assert len(arms) == 5 * 199 + 1
    assert "shared" in arms and "w3-0" not in arms and "w3-199" in arms
