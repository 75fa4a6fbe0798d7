"""jobs.json / jobs.yaml: the corpus of valid and invalid files, Job construction, spec and digest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronplan.documents.jobsfile import RUNTIME_FIELDS, load_job, load_jobs, parse_jobs, spec_digest
from cronplan.errors import ConfigError, ValidationError
from cronplan.model import (
    CommandAction,
    CronSchedule,
    HttpAction,
    IntervalSchedule,
    Job,
    OnceSchedule,
)

DATA = Path(__file__).parent / "data" / "jobs"
VALID = sorted(p for p in (DATA / "valid").iterdir() if p.suffix in (".json", ".yaml", ".yml"))
EXPECTED: dict[str, Any] = json.loads((DATA / "invalid" / "expected.json").read_text())
INVALID = sorted(k for k in EXPECTED if not k.startswith("_"))
UTC = timezone.utc


def problems_of(path: Path, **kw: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        load_jobs(path, **kw)
    return list(info.value.problems)


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_corpus_loads(path: Path) -> None:
    jf = load_jobs(path)
    raw = path.read_text()
    assert jf.path == path
    ids = [j.id for j in jf.jobs]
    assert len(ids) == len(set(ids))
    for job in jf.jobs:
        assert job.id in raw
        assert len(job.digest) == 64
        assert job.digest == spec_digest(job.spec)


def test_every_invalid_file_has_expectations() -> None:
    on_disk = sorted(p.name for p in (DATA / "invalid").iterdir() if p.name != "expected.json")
    assert on_disk == INVALID


@pytest.mark.parametrize("name", INVALID)
def test_invalid_corpus_reports_every_problem_located(name: str) -> None:
    path = DATA / "invalid" / name
    problems = problems_of(path)
    got = [(p.line, p.col, p.pointer) for p in problems]
    want = [(line, col, ptr) for line, col, ptr, _ in EXPECTED[name]]
    assert got == want
    for p, (_, _, _, fragment) in zip(problems, EXPECTED[name], strict=True):
        assert fragment in p.message
        assert p.file.endswith(name)
        assert "Traceback" not in str(p)


def test_problem_text_is_file_line_col_pointer_message() -> None:
    p = problems_of(DATA / "invalid" / "typos.json")[0]
    assert str(p).endswith(
        "typos.json:5:7: /jobs/0/nmae: unknown field 'nmae' (did you mean 'name'?)"
    )


def test_all_problems_are_in_the_error_message_one_per_line() -> None:
    with pytest.raises(ValidationError) as info:
        load_jobs(DATA / "invalid" / "types.json")
    lines = str(info.value).splitlines()
    assert len(lines) == len(EXPECTED["types.json"])
    assert all(":" in line and "/jobs" in line for line in lines)


# --------------------------------------------------------------------------- building jobs


def test_hermes_file_builds_jobs_with_runtime_fields_stripped_from_spec() -> None:
    jf = load_jobs(DATA / "valid" / "hermes.json", default_tz="Europe/Paris")
    by_id = jf.by_id()
    news = by_id["3f9a1c2b7d4e"]
    assert news.schedule == CronSchedule(expr="0 8 * * *", tz="Europe/Paris")
    assert news.action is None  # the configured runner runs prompt jobs
    assert news.raw["fire_claim"] == {"at": "2026-11-26T08:00:00+01:00", "by": "host-a:4242"}
    for field in RUNTIME_FIELDS:
        assert field not in news.spec
    assert news.spec["repeat"] == {"times": None}
    assert news.spec["schedule"]["tz"] == "Europe/Paris"
    assert news.spec["prompt"].startswith("Collect the most important")
    assert news.spec["provider"] == "nous"  # the LLM provider: a job field, passed through

    disk = by_id["0d9e5d7665d1"]
    assert disk.schedule == IntervalSchedule(seconds=1800, tz="Europe/Paris")

    dentist = by_id["b71c0e9a22f3"]
    assert dentist.schedule == OnceSchedule(
        run_at=datetime(2026, 12, 1, 7, 30, tzinfo=UTC), tz="Europe/Paris"
    )
    assert (dentist.enabled, dentist.state, dentist.inactive_reason) == (
        False,
        "paused",
        "disabled",
    )
    assert "_process_continuation" not in dentist.spec
    assert "_process_continuation" in dentist.raw

    review = by_id["e0f1a2b3c4d5"]
    assert (review.state, review.repeat_times, review.max_runs) == ("completed", 4, 4)


def test_digest_ignores_runtime_fields_but_not_definition() -> None:
    base = {"id": "a", "schedule": {"kind": "cron", "expr": "0 9 * * *"}, "prompt": "hi"}
    runtime = dict(base, next_run_at="2026-11-27T09:00:00Z", last_status="ok",
                   repeat={"times": None, "completed": 3}, fire_claim={"at": "x", "by": "y"})  # fmt: skip
    changed = dict(base, prompt="hello")

    def digest(job: dict[str, Any]) -> str:
        return parse_jobs(json.dumps([job]), file="x.json")[0].digest

    with_repeat = dict(base, repeat={"times": None})
    assert digest(runtime) == digest(with_repeat)
    assert digest(base) != digest(changed)
    # The effective zone is part of the spec: changing the config default changes the job.
    utc = parse_jobs(json.dumps([base]), file="x.json")[0]
    berlin = parse_jobs(json.dumps([base]), file="x.json", default_tz="Europe/Berlin")[0]
    assert utc.spec["schedule"]["tz"] == "UTC"
    assert utc.digest != berlin.digest


def test_spec_digest_is_sha256_of_canonical_json() -> None:
    import hashlib

    spec = {"b": [1, {"z": "é", "a": None}], "a": True}
    canonical = '{"a":true,"b":[1,{"a":null,"z":"é"}]}'
    assert spec_digest(spec) == hashlib.sha256(canonical.encode()).hexdigest()


_JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.text(max_size=8)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_JSON_VALUES)
def test_canonical_json_is_the_standard_librarys_sorted_compact_form(value: Any) -> None:
    """The fast encoder (orjson) writes exactly what json.dumps writes sorted and compact, also for
    integers beyond 64 bits (which it hands to the standard library)."""
    from cronplan.documents.jobsfile import canonical_json

    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected
    assert (
        spec_digest({"v": value})
        == hashlib.sha256(
            json.dumps(
                {"v": value}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        ).hexdigest()
    )


def test_actions_are_built() -> None:
    jobs = parse_jobs(
        json.dumps(
            [
                {"id": "c", "schedule": {"kind": "interval", "seconds": 30},
                 "command": ["echo", "hello"], "env": {"A": "1"}, "cwd": "/tmp", "timeout_seconds": 5},
                {"id": "h", "schedule": {"kind": "interval", "seconds": 30},
                 "http": {"url": "http://127.0.0.1:1/x", "headers": {"k": "v"}, "body": [1, 2]}},
                {"id": "r", "schedule": {"kind": "interval", "seconds": 30}, "prompt": "p"},
            ]
        ),
        file="x.json",
    )  # fmt: skip
    c, h, r = jobs
    assert c.action == CommandAction(
        argv=("echo", "hello"), env={"A": "1"}, cwd="/tmp", timeout_seconds=5.0
    )
    assert h.action == HttpAction(
        url="http://127.0.0.1:1/x", method="POST", headers={"k": "v"}, body=[1, 2]
    )
    assert r.action is None


def test_fast_built_objects_equal_constructed_ones_and_have_every_field() -> None:
    jobs = load_jobs(DATA / "valid" / "examples.json").jobs
    names = {f.name for f in dataclasses.fields(Job)}
    for job in jobs:
        assert set(vars(job)) == names
        sched = job.schedule
        assert set(vars(sched)) == {f.name for f in dataclasses.fields(sched)}
        assert sched == type(sched)(**vars(sched))
        if job.action is not None:
            assert job.action == type(job.action)(**vars(job.action))
        with pytest.raises(dataclasses.FrozenInstanceError):
            job.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_load_job_builds_exactly_the_job_load_jobs_builds(path: Path) -> None:
    everything = load_jobs(path).jobs
    for job in everything:
        one = load_job(path, job.id)
        assert one is not None
        assert vars(one) == vars(job)
    assert load_job(path, "no-such-job") is None


def test_load_job_checks_the_whole_file(tmp_path: Path) -> None:
    """A fire builds one job but refuses a file that plan would refuse, with the same problems."""
    path = tmp_path / "jobs.json"
    good = {"id": "good", "schedule": {"kind": "interval", "seconds": 60}, "command": ["true"]}
    bad = {"id": "bad", "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "Mars/Base"}}
    path.write_text(json.dumps({"jobs": [good, bad]}))
    with pytest.raises(ValidationError) as everything:
        load_jobs(path)
    with pytest.raises(ValidationError) as one:
        load_job(path, "good")
    assert one.value.problems == everything.value.problems


def test_once_naive_time_is_read_in_the_schedule_zone() -> None:
    (job,) = parse_jobs(
        json.dumps([{"id": "o", "schedule": {"kind": "once", "run_at": "2027-03-01T09:00:00",
                                             "tz": "America/New_York"}}]),
        file="x.json",
    )  # fmt: skip
    assert job.schedule == OnceSchedule(
        run_at=datetime(2027, 3, 1, 14, 0, tzinfo=UTC), tz="America/New_York"
    )


def test_interval_start_at_is_parsed() -> None:
    (job,) = parse_jobs(
        "- {id: i, schedule: {kind: interval, seconds: 90, start_at: '2026-01-01T00:00:00+01:00'}}\n",
        file="x.yaml",
        fmt="yaml",
    )
    assert job.schedule == IntervalSchedule(
        seconds=90, start_at=datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    )


def test_yaml_timestamps_stay_text() -> None:
    (job,) = parse_jobs(
        "jobs:\n  - id: y\n    schedule: {kind: once, run_at: 2027-01-05T09:00:00, tz: Asia/Tokyo}\n",
        file="x.yaml",
        fmt="yaml",
    )
    assert job.raw["schedule"]["run_at"] == "2027-01-05T09:00:00"
    assert job.schedule.run_at == datetime(2027, 1, 5, 0, 0, tzinfo=UTC)  # type: ignore[union-attr]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="jobs file not found"):
        load_jobs(tmp_path / "nope.json")


def test_empty_jobs_list_is_valid(tmp_path: Path) -> None:
    p = tmp_path / "jobs.json"
    p.write_text('{"jobs": []}')
    assert load_jobs(p).jobs == ()


def test_unknown_default_zone_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "jobs.json"
    p.write_text('{"jobs": []}')
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        load_jobs(p, default_tz="Mars/Olympus")


def test_bad_utf8_is_one_problem(tmp_path: Path) -> None:
    p = tmp_path / "jobs.json"
    p.write_bytes(b'{"jobs": [\n{"id": "\xff"}]}')
    (problem,) = problems_of(p)
    assert (problem.line, problem.message) == (2, "file is not valid UTF-8")


def test_x_fields_and_hermes_fields_pass_but_misspelt_cronplan_fields_fail() -> None:
    ok = {"id": "a", "schedule": {"kind": "cron", "expr": "0 9 * * *"}, "x-anything": {"deep": [1]},
          "skills": ["s"], "deliver": "origin", "no_agent": False, "workdir": "/w"}  # fmt: skip
    assert parse_jobs(json.dumps([ok]), file="x.json")[0].spec["x-anything"] == {"deep": [1]}
    bad = dict(ok, catchup="skip")
    with pytest.raises(ValidationError) as info:
        parse_jobs(json.dumps([bad]), file="x.json")
    (p,) = info.value.problems
    assert (p.pointer, p.message) == (
        "/0/catchup",
        "unknown field 'catchup' (did you mean 'catch_up'?)",
    )


def test_schedule_fields_of_another_kind_are_explained() -> None:
    job = {"id": "a", "schedule": {"kind": "interval", "seconds": 5, "expr": "* * * * *"}}
    with pytest.raises(ValidationError) as info:
        parse_jobs(json.dumps([job]), file="x.json")
    (p,) = info.value.problems
    assert p.pointer == "/0/schedule/expr"
    assert "'expr' belongs to a cron schedule" in p.message


def test_error_output_never_has_a_traceback_for_garbage(tmp_path: Path) -> None:
    for i, text in enumerate(
        ["", "{", "[1, 2", "null", '{"jobs": [null, [], "x"]}', "\x00", "[" * 5000]
    ):
        p = tmp_path / f"g{i}.json"
        p.write_text(text)
        with pytest.raises(ValidationError) as info:
            load_jobs(p)
        assert "Traceback" not in str(info.value)
        assert info.value.problems


def test_weird_yaml_values_never_crash(tmp_path: Path) -> None:
    p = tmp_path / "j.yaml"
    p.write_text("jobs:\n  - id: a\n    schedule: {kind: cron, expr: '* * * * *'}\n    x-bin: !!binary aGVsbG8=\n"
                 "  - {id: 5, schedule: {kind: cron, expr: 7}}\n  - {1: x, on: 2}\n")  # fmt: skip
    with pytest.raises(ValidationError) as info:
        load_jobs(p)
    pointers = [pr.pointer for pr in info.value.problems]
    assert "/jobs/1/id" in pointers and "/jobs/1/schedule/expr" in pointers


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_check_jobs_counts_what_load_jobs_builds(path: Path) -> None:
    from cronplan.documents.jobsfile import check_jobs

    assert check_jobs(path) == len(load_jobs(path).jobs)


@pytest.mark.parametrize("name", INVALID)
def test_check_jobs_reports_the_same_problems(name: str) -> None:
    from cronplan.documents.jobsfile import check_jobs

    path = DATA / "invalid" / name
    with pytest.raises(ValidationError) as info:
        check_jobs(path)
    assert info.value.problems == tuple(problems_of(path))


def test_x_fields_are_accepted_at_every_level() -> None:
    job = {
        "id": "a",
        "x-top": 1,
        "schedule": {"kind": "once", "run_at": "2027-01-01T00:00:00Z", "x-note": "n"},
        "http": {"url": "http://127.0.0.1:1/", "x-retry": {"max": 3}},
        "repeat": {"times": 1, "x-why": "once is enough"},
    }
    (built,) = parse_jobs(json.dumps({"jobs": [job], "x-meta": {}}), file="x.json")
    assert built.spec["schedule"]["x-note"] == "n"
    assert built.spec["http"]["x-retry"] == {"max": 3}


def test_values_json_cannot_hold_are_refused(tmp_path: Path) -> None:
    """Specs go to the ledger and plan files as JSON: binary, NaN and Infinity must not get in."""
    y = tmp_path / "j.yaml"
    y.write_text(
        "jobs:\n  - id: a\n    schedule: {kind: cron, expr: '* * * * *'}\n"
        "    x-bin: !!binary aGVsbG8=\n    x-f: .nan\n"
    )
    assert [(p.line, p.col, p.pointer) for p in problems_of(y)] == [
        (4, 12, "/jobs/0/x-bin"),
        (5, 10, "/jobs/0/x-f"),
    ]
    j = tmp_path / "j.json"
    j.write_text('{"jobs": [\n {"id": "a", "x-n": NaN}]}')
    (p,) = problems_of(j)
    assert (p.line, p.col, p.message) == (2, 21, "invalid JSON: NaN is not a JSON number")


# --------------------------------------------------------------------------- the job as applied


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_job_from_spec_rebuilds_every_valid_job_as_loaded(path: Path) -> None:
    """The ledger keeps a job's spec; building it again gives the same job (what fires is what was applied)."""
    from cronplan.documents.jobsfile import job_from_spec

    for job in load_jobs(path, default_tz="Europe/Berlin").jobs:
        # Through JSON and back, as the ledger stores it; under another default zone, which must not
        # matter because the spec carries the effective zone.
        again = job_from_spec(json.loads(json.dumps(job.spec)), default_tz="UTC")
        assert again.digest == job.digest and again.spec == job.spec
        assert (again.schedule, again.action, again.name) == (job.schedule, job.action, job.name)
        assert (again.enabled, again.state, again.repeat_times, again.catch_up) == (
            job.enabled,
            job.state,
            job.repeat_times,
            job.catch_up,
        )


def test_job_from_an_unreadable_spec_is_a_ledger_error() -> None:
    from cronplan.documents.jobsfile import job_from_spec
    from cronplan.errors import LedgerError

    bad = {"id": "x", "schedule": {"kind": "cron", "expr": "61 * * * *", "tz": "UTC"}}
    with pytest.raises(LedgerError, match=r"applied definition of job 'x'.*apply the job again"):
        job_from_spec(bad)
    with pytest.raises(LedgerError, match="cannot be read"):
        job_from_spec({"id": "y"})
