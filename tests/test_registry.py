"""Provider discovery and resolution, with real entry points from tiny distributions put on sys.path."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from cronplan import registry
from cronplan.errors import ProviderUnavailable
from cronplan.local.provider import LocalProvider
from cronplan.provider import ProviderSettings

PLUGIN_MODULE = textwrap.dedent(
    """
    from cronplan.provider import Availability

    class GoodProvider:
        name = "good"
        calls_back = True

        def __init__(self, settings):
            self.settings = settings

        def check(self):
            if not self.settings.options.get("token_env"):
                return Availability(False, "providers.good.token_env is not set")
            return Availability(True, "ready")

        def list_arms(self): return []
        def arm(self, arm): pass
        def cancel(self, job_id): pass
        def verify(self, request): raise NotImplementedError
        def close(self): pass

    class ExplodingProvider(GoodProvider):
        def __init__(self, settings):
            raise RuntimeError("cannot reach the moon")

    NOT_CALLABLE = 42
    """
)


def _install(site: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """Write a minimal installed distribution (dist-info with entry points) into ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[cronplan.providers]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "fake_cronplan_plugin.py").write_text(PLUGIN_MODULE)
    (site / "broken_cronplan_plugin.py").write_text("raise ImportError('needs libmoon')\n")
    _install(
        site,
        "cronplan-good",
        "1.2.3",
        {
            "good": "fake_cronplan_plugin:GoodProvider",
            "exploding": "fake_cronplan_plugin:ExplodingProvider",
            "notcallable": "fake_cronplan_plugin:NOT_CALLABLE",
            "local": "fake_cronplan_plugin:GoodProvider",  # must never shadow the built-in
        },
    )
    _install(site, "cronplan-broken", "0.0.1", {"broken": "broken_cronplan_plugin:Provider"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS")
    return site


def _settings(name: str, tmp_path: Path, **options: object) -> ProviderSettings:
    return ProviderSettings(
        name=name, options=options, base_dir=tmp_path, environ={"HOME": str(tmp_path)}
    )


def test_local_is_built_in_and_always_there(tmp_path: Path) -> None:
    infos = registry.discover({"CRONPLAN_DISABLE_PLUGINS": "1"})
    local = [i for i in infos if i.name == "local"]
    assert len(local) == 1
    assert local[0].source == "built-in" and local[0].error is None and local[0].version
    provider = registry.resolve(_settings("local", tmp_path))
    assert isinstance(provider, LocalProvider)
    provider.close()


def test_plugins_are_discovered_with_source_and_version(site: Path) -> None:
    infos = {(i.name, i.source): i for i in registry.discover({})}
    good = infos[("good", "cronplan-good")]
    assert good.version == "1.2.3" and good.error is None
    assert "needs libmoon" in (infos[("broken", "cronplan-broken")].error or "")
    assert "not a class or factory" in (infos[("notcallable", "cronplan-good")].error or "")
    assert infos[("local", "built-in")].error is None
    assert "built-in" in (infos[("local", "cronplan-good")].error or "")
    names = [i.name for i in registry.discover({})]
    assert names == sorted(names)


def test_resolve_a_plugin(site: Path, tmp_path: Path) -> None:
    provider = registry.resolve(_settings("good", tmp_path, token_env="X"))
    assert type(provider).__name__ == "GoodProvider"
    assert provider.settings.options == {"token_env": "X"}  # type: ignore[attr-defined]


def test_resolve_local_is_never_shadowed_by_a_plugin(site: Path, tmp_path: Path) -> None:
    provider = registry.resolve(_settings("local", tmp_path))
    assert isinstance(provider, LocalProvider)
    provider.close()


def test_disable_switch_hides_third_party_plugins(site: Path, tmp_path: Path) -> None:
    env = {"CRONPLAN_DISABLE_PLUGINS": "1"}
    assert [i.name for i in registry.discover(env)] == ["local"]
    with pytest.raises(ProviderUnavailable) as exc:
        registry.resolve(ProviderSettings(name="good", base_dir=tmp_path, environ=env))
    assert "CRONPLAN_DISABLE_PLUGINS" in str(exc.value)
    # Falsy values keep plugins on.
    for off in ("", "0", "false", "no"):
        assert "good" in [i.name for i in registry.discover({"CRONPLAN_DISABLE_PLUGINS": off})]


def test_unknown_provider_lists_known_names(site: Path, tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable) as exc:
        registry.resolve(_settings("nope", tmp_path))
    message = str(exc.value)
    assert "unknown provider 'nope'" in message
    assert "good" in message and "local" in message and "cronplan.providers" in message


def test_import_failure_names_the_cause_without_traceback(site: Path, tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable) as exc:
        registry.resolve(_settings("broken", tmp_path))
    message = str(exc.value)
    assert "needs libmoon" in message and "cronplan-broken" in message
    assert "Traceback" not in message and exc.value.__cause__ is None


def test_construction_failure_names_the_cause(site: Path, tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="RuntimeError: cannot reach the moon"):
        registry.resolve(_settings("exploding", tmp_path))


def test_unavailable_provider_says_exactly_what_is_missing(site: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ProviderUnavailable,
        match=r"provider 'good' is not available: providers\.good\.token_env is not set",
    ):
        registry.resolve(_settings("good", tmp_path))


def test_unavailable_local_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProviderUnavailable, match="not a directory"):
        registry.resolve(_settings("local", tmp_path, path="file/local.db"))


def test_two_distributions_claiming_one_name_is_refused(site: Path, tmp_path: Path) -> None:
    _install(site, "cronplan-rival", "9.9", {"good": "fake_cronplan_plugin:GoodProvider"})
    with pytest.raises(ProviderUnavailable, match="several distributions"):
        registry.resolve(_settings("good", tmp_path, token_env="X"))
    errors = {i.source: i.error for i in registry.discover({}) if i.name == "good"}
    assert set(errors) == {"cronplan-good", "cronplan-rival"} and all(errors.values())


# ---------------------------------------------------------------------- the `providers` command


def test_providers_command_text(project) -> None:  # type: ignore[no-untyped-def]
    result = project.cli("providers")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "VERSION", "STATUS"]
    local = next(line for line in lines if " local " in f" {line} ")
    assert local.startswith("*") and "built-in" in local and "available: arms in" in local


def test_providers_command_json(project) -> None:  # type: ignore[no-untyped-def]
    result = project.cli("providers", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["format_version"] == "1"
    (local,) = [p for p in doc["providers"] if p["name"] == "local"]
    assert set(local) == {"name", "source", "version", "available", "detail"}
    assert local["source"] == "built-in" and local["available"] is True


def test_providers_command_reports_why_not(project, site: Path) -> None:  # type: ignore[no-untyped-def]
    project.write_config("provider: good\nproviders:\n  good: {}\n")
    result = project.cli("providers", "--format", "json")
    assert result.exit_code == 0, result.stderr
    by_name = {(p["name"], p["source"]): p for p in json.loads(result.stdout)["providers"]}
    good = by_name[("good", "cronplan-good")]
    assert good["available"] is False and good["detail"] == "providers.good.token_env is not set"
    assert good["version"] == "1.2.3"
    assert by_name[("broken", "cronplan-broken")]["available"] is False
    assert "needs libmoon" in by_name[("broken", "cronplan-broken")]["detail"]
    assert "cannot reach the moon" in by_name[("exploding", "cronplan-good")]["detail"]
    assert by_name[("local", "built-in")]["available"] is True


def test_provider_statuses_with_a_config_built_directly(site: Path, tmp_path: Path) -> None:
    from cronplan.cli.providers import provider_statuses, render_text
    from cronplan.documents.config import Config

    config = Config(base_dir=tmp_path, provider="good", providers={"good": {"token_env": "T"}})
    statuses = {(s.name, s.source): s for s in provider_statuses(config, {})}
    good = statuses[("good", "cronplan-good")]
    assert good.available and good.configured and good.detail == "ready"
    local = statuses[("local", "built-in")]
    assert local.available and not local.configured
    assert not statuses[("broken", "cronplan-broken")].available
    text = render_text(list(statuses.values()))
    assert re.search(r"^\*\s+good\s+cronplan-good\s+1\.2\.3\s+available: ready$", text, re.M), text
    assert re.search(r"^\s+local\s+built-in\s+\S+\s+available: arms in ", text, re.M), text
    assert "unavailable: cannot import broken_cronplan_plugin:Provider" in text
    assert not (tmp_path / ".cronplan").exists()  # listing providers creates no files


def test_providers_command_warns_about_a_missing_configured_provider(project) -> None:  # type: ignore[no-untyped-def]
    project.write_config("provider: nowhere\n")
    result = project.cli("providers")
    assert result.exit_code == 0, result.stderr
    assert "configured provider 'nowhere' is not installed" in result.stderr
    assert "CRONPLAN_DISABLE_PLUGINS is set" in result.stderr
    assert "nowhere" not in result.stdout


def test_local_survives_a_broken_entry_point_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    def broken(**_: object) -> object:
        raise RuntimeError("corrupt dist-info")

    monkeypatch.setattr(metadata, "entry_points", broken)
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS")
    assert [i.name for i in registry.discover({})] == ["local"]
    provider = registry.resolve(_settings("local", tmp_path))  # and never even scans for local
    assert isinstance(provider, LocalProvider)
    provider.close()


def test_version_lists_installed_providers_without_importing_them(project, site: Path) -> None:  # type: ignore[no-untyped-def]
    from cronplan import __version__

    result = project.cli("--version")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"cronplan {__version__}"
    assert lines[1] == "providers:"
    rows = {(line.split()[0], line.split()[2]): line.split()[1:] for line in lines[2:]}
    assert rows[("local", "(built-in)")] == [__version__, "(built-in)"]
    assert rows[("good", "(cronplan-good)")] == ["1.2.3", "(cronplan-good)"]
    # A plugin that cannot even be imported is listed with its version: --version imports nothing.
    assert rows[("broken", "(cronplan-broken)")] == ["0.0.1", "(cronplan-broken)"]
    # The clashing "local" of cronplan-good is shown as ignored, never as the local provider.
    assert "built-in provider" in " ".join(rows[("local", "(cronplan-good)")])
    assert result.stderr == ""


def test_version_with_plugins_disabled_says_so(project) -> None:  # type: ignore[no-untyped-def]
    result = project.cli("--version", env={"CRONPLAN_DISABLE_PLUGINS": "1"})
    assert result.exit_code == 0
    assert "  local " in result.stdout
    assert "CRONPLAN_DISABLE_PLUGINS is set" in result.stdout


def test_version_in_a_real_process_lists_the_bundled_providers(project) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("cronplan_nas")
    env = {"CRONPLAN_DISABLE_PLUGINS": ""}
    result = project.run("--version", env=env)
    assert result.exit_code == 0, result.stderr
    from importlib.metadata import version

    assert re.search(
        rf"^  nas +{re.escape(version('cronplan-nas'))} \(cronplan-nas\)$", result.stdout, re.M
    )


def test_unknown_provider_close_to_a_known_one_gets_did_you_mean(
    site: Path, tmp_path: Path
) -> None:
    with pytest.raises(ProviderUnavailable) as exc:
        registry.resolve(_settings("godo", tmp_path))
    assert "did you mean 'good'?" in str(exc.value)


# --------------------------------------------------------------------------- missing optional dependencies
# Each runs the real CLI in a subprocess whose imports of the named modules fail (a sitecustomize on
# PYTHONPATH installs an import hook), as on a machine where they were never installed.

_BLOCK_IMPORTS = textwrap.dedent(
    """
    import sys

    BLOCKED = {blocked!r}

    class _Missing:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _Missing())
    """
)


def _cli_without(tmp_path: Path, blocked: tuple[str, ...], config: str) -> tuple[int, str]:
    import os
    import subprocess
    import sys

    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_BLOCK_IMPORTS.format(blocked=set(blocked)))
    (tmp_path / "cronplan.yaml").write_text(config)
    (tmp_path / "jobs.json").write_text('{"jobs": []}')
    env = {**os.environ, "PYTHONPATH": str(shim), "CRONPLAN_DISABLE_PLUGINS": ""}
    if blocked:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {blocked[0]}"], env=env, capture_output=True, text=True
        )
        assert probe.returncode != 0, "the import hook did not take effect"
    proc = subprocess.run(
        [sys.executable, "-m", "cronplan", "plan", "--now", "2026-11-27T09:00:00Z"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr and "bug in cronplan" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def test_postgres_state_without_psycopg_says_how_to_install_it(tmp_path: Path) -> None:
    code, err = _cli_without(
        tmp_path,
        ("psycopg", "psycopg_pool"),
        "jobs: jobs.json\nstate: postgresql://cronplan@127.0.0.1:1/state\n",
    )
    assert code == 1, err
    assert "pip install 'cronplan[postgres]'" in err
    assert "postgresql://cronplan@127.0.0.1:1/state" in err


def test_provider_whose_distribution_is_missing_says_how_to_install_it(tmp_path: Path) -> None:
    code, err = _cli_without(
        tmp_path,
        ("cronplan_nas",),
        "jobs: jobs.json\nprovider: nas\n",
    )
    assert code == 1, err
    assert "pip install cronplan-nas" in err


def test_unknown_provider_through_the_cli_gets_did_you_mean(tmp_path: Path) -> None:
    code, err = _cli_without(tmp_path, (), "jobs: jobs.json\nprovider: locla\n")
    assert code == 1, err
    assert "did you mean 'local'?" in err


def test_provider_nobody_provides_gets_the_install_command(tmp_path: Path) -> None:
    code, err = _cli_without(tmp_path, (), "jobs: jobs.json\nprovider: quartzish\n")
    assert code == 1, err
    assert "pip install cronplan-quartzish" in err
