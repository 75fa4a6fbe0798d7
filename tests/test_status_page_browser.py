"""The status page in a real headless Chromium (Debian's package), against a real `cronplan serve`.

Checks what a person sees after the browser has parsed and laid out the page: the jobs, a failure's
output, the timeline. `scripts/test` installs Chromium when it is missing; without it this test skips
(or fails under CRONPLAN_TEST_REQUIRE_SERVICES).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.fixtures_core import Project
from tests.fixtures_pg import skip_or_fail
from tests.fixtures_serve import ServeFactory
from tests.test_observe_serve import seed

pytestmark = pytest.mark.slow


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    skip_or_fail("chromium is not installed (apt-get install chromium; scripts/test does it)")
    raise AssertionError("unreachable")


def browse(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("http_proxy", "https_proxy")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_status_page_in_headless_chromium(
    project: Project, serve_process: ServeFactory, tmp_path: Path
) -> None:
    seed(project)
    sp = serve_process(project.root)

    dom = browse(tmp_path, "--dump-dom", f"{sp.url}/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # The browser's own serialisation of what it parsed: the jobs, the failure and its output tail.
    assert "Morning report" in html
    assert "&lt;script&gt;alert('x')&lt;/script&gt; nightly backup" in html
    assert "<script>" not in html  # the hostile name stayed text: no script element exists
    assert "disk /srv/backup is full" in html
    assert "exited with status 3" in html
    # The timeline was parsed as SVG with one row per job and a mark per fire.
    assert html.count('<g class="row">') == 2
    assert "<svg" in html and "Fires in the next 24 hours" in html

    shot = tmp_path / "status.png"
    res = browse(tmp_path, f"--screenshot={shot}", "--window-size=1100,900", f"{sp.url}/")
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000  # a rendered page, not a blank one
    assert png_size(shot) == (1100, 900)
