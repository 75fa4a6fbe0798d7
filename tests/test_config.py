"""cronplan.yaml: lookup order, defaults, relative paths, located errors, secrets refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronplan.documents.config import (
    DEFAULT_CALLBACK_URL,
    DEFAULT_JOBS,
    DEFAULT_STATE,
    DEFAULT_TIMEZONE,
    Config,
    load_config,
)
from cronplan.errors import ConfigError, ValidationError

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(path: Path) -> list[tuple[int, int, str, str]]:
    with pytest.raises(ValidationError) as info:
        load_config(str(path), {})
    return [(p.line, p.col, p.pointer, p.message) for p in info.value.problems]


def test_no_file_means_every_default_relative_to_cwd(chdir: Path) -> None:
    cfg = load_config(None, {})
    assert cfg == Config(base_dir=chdir)
    assert (cfg.jobs, cfg.timezone, cfg.state, cfg.callback_url) == (
        DEFAULT_JOBS, DEFAULT_TIMEZONE, DEFAULT_STATE, DEFAULT_CALLBACK_URL)  # fmt: skip
    assert cfg.source is None
    assert cfg.jobs_path == chdir / "jobs.json"


def test_lookup_order_flag_then_env_then_cwd(chdir: Path) -> None:
    (chdir / "cronplan.yaml").write_text("timezone: Europe/Berlin\n")
    (chdir / "env.yaml").write_text("timezone: Asia/Tokyo\n")
    (chdir / "flag.yaml").write_text("timezone: America/New_York\n")
    env = {"CRONPLAN_CONFIG": str(chdir / "env.yaml")}
    assert load_config(None, {}).timezone == "Europe/Berlin"
    assert load_config(None, env).timezone == "Asia/Tokyo"
    assert load_config(str(chdir / "flag.yaml"), env).timezone == "America/New_York"


def test_explicitly_named_file_must_exist(chdir: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*missing\.yaml"):
        load_config("missing.yaml", {})
    with pytest.raises(ConfigError, match="CRONPLAN_CONFIG"):
        load_config(None, {"CRONPLAN_CONFIG": "also-missing.yaml"})


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path, chdir: Path) -> None:
    sub = tmp_path / "proj"
    sub.mkdir()
    (sub / "cronplan.yaml").write_text("jobs: conf/jobs.yaml\n")
    cfg = load_config(str(sub / "cronplan.yaml"), {})
    assert cfg.base_dir == sub.resolve()
    assert cfg.jobs_path == sub.resolve() / "conf" / "jobs.yaml"
    assert cfg.source == sub / "cronplan.yaml"


def test_full_example_config_loads() -> None:
    cfg = load_config(str(EXAMPLES / "cronplan.yaml"), {})
    assert cfg.provider == "local"
    # The example jobs include a Hermes-style prompt job: the example runner script runs it.
    assert cfg.runner == ("python3", "prompt_runner.py")
    assert cfg.provider_options("local") == {"path": ".cronplan/local.db"}
    assert cfg.provider_options("nas") == {}


def test_every_setting(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "jobs: jobs.yaml\nprovider: acme\ncallback_url: https://agent.example:8443\ntimezone: Asia/Kolkata\n"
        "state: env:CRONPLAN_STATE_DSN\nrunner: [hermes, cron, run]\n"
        "providers:\n  acme: {region: eu, whatever: [1, 2]}\n  nas:\n    portal_url: https://portal.example\n"
        "    token_env: CRONPLAN_NAS_TOKEN\n    require_body_binding: false\n  temporal:\n"
        "  local: {path: /var/lib/cronplan/local.db}\nx-team: infra\n"
    )
    cfg = load_config(str(p), {})
    assert cfg.runner == ("hermes", "cron", "run")
    assert cfg.provider == "acme"
    assert cfg.provider_options("acme") == {"region": "eu", "whatever": [1, 2]}
    assert cfg.provider_options("temporal") == {}
    assert cfg.provider_options("nas")["token_env"] == "CRONPLAN_NAS_TOKEN"


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("# nothing yet\n")
    cfg = load_config(str(p), {})
    assert (cfg.jobs, cfg.provider, cfg.source) == ("jobs.json", "local", p)


def test_errors_are_located_with_hints(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "jobs: jobs.json\n"
        "timezon: UTC\n"
        "timezone: Europe/Berln\n"
        "runner: hermes cron run\n"
        "state: mysql://db\n"
        "callback_url: 127.0.0.1:8787\n"
        "providers:\n"
        "  nas:\n"
        "    token_env: abc-123-not-a-name\n"
    )
    assert problems(p) == [
        (2, 1, "/timezon", "unknown field 'timezon' (did you mean 'timezone'?)"),
        (3, 11, "/timezone", "unknown timezone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
        (4, 9, "/runner", 'must be an argv list such as ["hermes", "cron", "run"] (no shell), or null'),
        (5, 8, "/state", "must be sqlite:///PATH, postgresql://... or env:VARNAME"),
        (6, 15, "/callback_url", "must be an http:// or https:// URL"),
        (9, 16, "/providers/nas/token_env",
         "must be the NAME of an environment variable (e.g. CRONPLAN_NAS_TOKEN), not its value"),
    ]  # fmt: skip


def test_secrets_in_the_file_are_refused_without_echoing_them(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "state: postgresql://app:hunter2@db.example/cron\n"
        "providers:\n"
        "  nas:\n"
        "    portal_url: https://portal.example\n"
        "    token: sk-live-supersecret\n"
        "  temporal: {secret: whsec_abcdef}\n"
    )
    with pytest.raises(ValidationError) as info:
        load_config(str(p), {})
    text = str(info.value)
    for secret in ("hunter2", "sk-live-supersecret", "whsec_abcdef"):
        assert secret not in text
    got = [(pr.line, pr.pointer) for pr in info.value.problems]
    assert got == [(1, "/state"), (5, "/providers/nas/token"), (6, "/providers/temporal/secret")]
    assert "token_env" in info.value.problems[1].message
    assert "secret_env" in info.value.problems[2].message
    assert "env:CRONPLAN_STATE_DSN" in info.value.problems[0].message


def test_dsn_without_password_is_fine(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("state: postgresql://app@db.example/cron\n")
    assert load_config(str(p), {}).state == "postgresql://app@db.example/cron"


def test_malformed_yaml_is_one_located_problem(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("jobs: [a,\nprovider: local\n")
    ((line, _col, ptr, msg),) = problems(p)
    assert (line, ptr) == (3, "")
    assert msg.startswith("invalid YAML:")


def test_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("- jobs.json\n")
    ((line, col, ptr, msg),) = problems(p)
    assert (line, col, ptr) == (1, 1, "")
    assert "must be an object" in msg


def test_retention_defaults_and_settings(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("jobs: jobs.json\n")
    cfg = load_config(str(p), {})
    assert (cfg.retention_runs_per_job, cfg.retention_max_age_days) == (1000, 90)
    p.write_text("retention: {runs_per_job: 50, max_age_days: 7.5}\n")
    cfg = load_config(str(p), {})
    assert (cfg.retention_runs_per_job, cfg.retention_max_age_days) == (50, 7.5)
    p.write_text("retention:\n  max_age_days: 14\n")
    assert load_config(str(p), {}).retention_runs_per_job == 1000


def test_bad_retention_is_located(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("retention:\n  runs_per_job: 0\n  max_age_days: -1\n  keep: all\n")
    found = problems(p)
    assert [(line, pointer) for line, _, pointer, _ in found] == [
        (2, "/retention/runs_per_job"),
        (3, "/retention/max_age_days"),
        (4, "/retention/keep"),
    ]
