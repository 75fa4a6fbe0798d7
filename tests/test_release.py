"""Release readiness: package metadata, versions that agree with the tag, the release workflow's shape."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cronplan import __version__

ROOT = Path(__file__).resolve().parent.parent
PYPROJECTS = {
    "cronplan": ROOT / "pyproject.toml",
    "cronplan-nas": ROOT / "providers" / "nas" / "pyproject.toml",
    "cronplan-temporal": ROOT / "providers" / "temporal" / "pyproject.toml",
}
RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def _project(path: Path) -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    return dict(doc["project"])


def check_version(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check-release-version"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("dist", sorted(PYPROJECTS))
def test_each_distribution_carries_the_metadata_pypi_shows(dist: str) -> None:
    project = _project(PYPROJECTS[dist])
    assert project["name"] == dist
    assert project["readme"] == "README.md"
    assert (PYPROJECTS[dist].parent / "README.md").is_file()
    assert project["license"] == "MIT"
    assert project["authors"] and project["keywords"]
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    # PEP 639: with a license expression, a "License ::" classifier is an error on upload.
    assert not [c for c in classifiers if c.startswith("License ::")]
    urls = project["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())


@pytest.mark.parametrize("dist", sorted(PYPROJECTS))
def test_every_dependency_has_a_lower_bound(dist: str) -> None:
    project = _project(PYPROJECTS[dist])
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    unbounded = [r for r in requirements if not re.search(r"(>=|==|~=)", r.split(";")[0])]
    assert unbounded == []


def test_providers_require_the_core_they_were_released_with() -> None:
    for dist in ("cronplan-nas", "cronplan-temporal"):
        deps = _project(PYPROJECTS[dist])["dependencies"]
        assert f"cronplan>={__version__}" in deps


def test_versions_agree_and_the_tag_must_match() -> None:
    ok = check_version(f"v{__version__}")
    assert ok.returncode == 0, ok.stderr
    bad = check_version("v9.9.9")
    assert bad.returncode == 1
    assert f"tag 'v9.9.9' does not match the version {__version__}" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert check_version("v1", "v2").returncode == 64


def test_the_changelog_has_the_current_version_and_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert __version__ in headings
    for heading in headings:  # every heading has its link reference at the bottom
        assert re.search(rf"^\[{re.escape(heading)}\]: https://", text, flags=re.MULTILINE)


def test_release_workflow_publishes_through_trusted_publishing_only() -> None:
    doc = yaml.safe_load(RELEASE.read_text(encoding="utf-8"))
    on = doc.get("on", doc.get(True))  # PyYAML reads the key `on` as a boolean
    assert on == {"push": {"tags": ["v*"]}}
    assert doc["permissions"] == {}
    build, publish = doc["jobs"]["build"], doc["jobs"]["publish"]
    assert build["permissions"] == {"contents": "read"}
    assert publish["permissions"] == {"id-token": "write"}  # the OIDC token, on this job alone
    assert publish["needs"] == "build"
    assert publish["environment"]["name"] == "pypi"
    runs = " ".join(str(step.get("run", "")) for step in build["steps"])
    assert "scripts/check-release-version" in runs and "scripts/build-dist" in runs
    assert 'cronplan" --version' in runs
    (publish_step,) = [s for s in publish["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    # No password or token input: PyPI exchanges the job's OIDC token.
    assert not {"password", "user"} & set(publish_step.get("with", {}))
    assert "secrets." not in RELEASE.read_text(encoding="utf-8")


def test_build_dist_checks_strictly() -> None:
    script = (ROOT / "scripts" / "build-dist").read_text(encoding="utf-8")
    assert "twine check --strict" in script
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/build-dist" in ci_run
    assert '"$WORK/venv/bin/cronplan" --version' in ci_run
