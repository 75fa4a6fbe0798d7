"""The JSON Schemas: found in a checkout and in an installed wheel, and themselves valid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronplan.documents.schemas import load_schema, schema_path, schemas_dir

ROOT = Path(__file__).parent.parent


def test_checkout_schemas_are_found() -> None:
    assert schemas_dir() == ROOT / "schemas"
    assert schema_path("jobs") == ROOT / "schemas" / "jobs.schema.json"


@pytest.mark.parametrize("name", ["jobs", "config"])
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    import jsonschema

    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_example_files_validate_against_the_raw_schemas() -> None:
    """Editors and other tools use the schema files directly: the examples must pass them as is."""
    import jsonschema
    import yaml

    jobs = json.loads((ROOT / "examples" / "jobs.json").read_text())
    jsonschema.Draft202012Validator(load_schema("jobs")).validate(jobs)
    config = yaml.safe_load((ROOT / "examples" / "cronplan.yaml").read_text())
    jsonschema.Draft202012Validator(load_schema("config")).validate(config)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_installed_wheel_carries_the_schemas(tmp_path: Path) -> None:
    """A wheel installed in a fresh venv validates files with no checkout around (the package data dir
    ``cronplan/schemas/`` sits next to the module ``cronplan/documents/schemas.py``)."""
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheel_dir), str(ROOT)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip()[-300:]}")
    (wheel,) = wheel_dir.glob("cronplan-*.whl")
    venv = tmp_path / "venv"
    # A truly fresh venv: no borrowed site-packages, so the wheel's declared dependencies are all it
    # gets (installed by pip from the package index), as on a machine whose Python has none of them.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    work = tmp_path / "outside"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "jobs.json", work / "jobs.json")
    (work / "bad.json").write_text('{"jobs": [{"id": "a", "schedul": {}}]}')
    probe = subprocess.run(
        [str(py), "-c", "import cronplan.documents.schemas as s; print(s.schemas_dir())"],
        cwd=work, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert str(venv) in probe.stdout, probe.stdout + probe.stderr
    ok = subprocess.run([str(py), "-m", "cronplan", "validate"], cwd=work, capture_output=True, text=True,
                        env=env, timeout=60)  # fmt: skip
    assert (ok.returncode, ok.stdout) == (0, "jobs.json: 7 jobs valid.\n"), ok.stderr
    bad = subprocess.run([str(py), "-m", "cronplan", "validate", "-f", "bad.json"], cwd=work,
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert bad.returncode == 1
    assert (
        "bad.json:1:23: /jobs/0/schedul: unknown field 'schedul' (did you mean 'schedule'?)"
        in bad.stderr
    )
