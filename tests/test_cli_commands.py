"""The command line's shape (docs/architecture.md): one module per command, registered by the table in
cronplan/cli/root.py, each module imported only when its command runs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from cronplan.cli.root import COMMANDS, cli


def test_every_command_of_the_table_lives_in_its_own_module() -> None:
    ctx = click.Context(cli)
    modules = [module for module, _ in COMMANDS.values()]
    assert len(modules) == len(set(modules)), "two commands share a module"
    for name, (module, _) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name
        loaded = importlib.import_module(f"cronplan.cli.{module}")
        here = [v for v in vars(loaded).values() if isinstance(v, click.Command)]
        assert here == [command], f"cronplan/cli/{module}.py should hold the {name} command alone"
    assert cli.get_command(ctx, "no-such-command") is None


def _run(*code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, timeout=60
    )


def test_a_command_imports_only_its_own_module() -> None:
    r = _run(
        "import sys",
        "from cronplan.cli.root import run",
        "code = run(['validate', '--help'])",
        "print(code)",
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('cronplan.cli.'))))",
    )
    assert r.returncode == 0, r.stderr
    code, modules = r.stdout.strip().splitlines()[-2:]
    assert code == "0"
    loaded = set(modules.split())
    assert "cronplan.cli.validate" in loaded
    others = {f"cronplan.cli.{m}" for m, _ in COMMANDS.values()} - {"cronplan.cli.validate"}
    assert not loaded & others, sorted(loaded & others)


def test_help_lists_every_command_and_an_unknown_one_is_a_usage_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cronplan", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("Commands:", 1)[1].split()
    for name in COMMANDS:
        assert name in listed
    bad = subprocess.run(
        [sys.executable, "-m", "cronplan", "plna"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 64
    assert "No such command 'plna'" in bad.stderr
    assert "Traceback" not in bad.stderr
