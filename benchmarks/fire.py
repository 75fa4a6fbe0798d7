"""Benchmark: a cold `cronplan fire` of a ["true"] job, end to end, against `python -c pass`.

End to end means a fresh process that loads the config and the applied job from the SQLite ledger (fires
never read jobs.json), claims the occurrence, runs `true`, records the run, re-plans the job and re-arms it on the local provider. Each fire is a
new occurrence (so none is a duplicate), and each is checked to have succeeded and re-armed. The two
commands are interleaved so that machine noise hits both alike. Target: median ratio <= 5x, with plugins enabled
and every bundled provider installed (the fast path, cronplan/_fastfire.py).

    python benchmarks/fire.py [-n RUNS] [--importtime] [--against PYTHON]

``--against PYTHON`` also times the same fire by another installation's interpreter (e.g. a venv of a
checkout of main), interleaved with the others, so a before/after comparison shares the machine's load.
CPU time (user + system of the process and its children) is printed too: on a loaded machine it moves
less than wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

TARGET = 5.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    argv: list[str], cwd: Path, env: dict[str, str], cpu: list[float] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    c0 = _cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(_cpu() - c0)
    return took, proc


def _check(i: int, proc: subprocess.CompletedProcess[str]) -> None:
    if (
        proc.returncode != 0
        or "succeeded in" not in proc.stderr
        or "next arm: 20" not in proc.stderr
    ):
        raise SystemExit(f"fire #{i} did not run and re-arm as expected:\n{proc.stderr[-2000:]}")


def _project(where: Path, python: str, env: dict[str, str]) -> list[str]:
    """A project with one 1-second ``["true"]`` job, applied by ``python``; the argv prefix firing it."""
    where.mkdir()
    (where / "cronplan.yaml").write_text("jobs: jobs.json\nprovider: local\ntimezone: UTC\n")
    (where / "jobs.json").write_text(
        '{"jobs": [{"id": "bench", "schedule": {"kind": "interval", "seconds": 1}, "command": ["true"]}]}\n'
    )
    argv = [python, "-m", "cronplan", "--config", str(where / "cronplan.yaml")]
    setup = subprocess.run(
        [*argv, "apply", "--auto-approve"], cwd=where, env=env, capture_output=True, text=True
    )
    if setup.returncode != 0:
        raise SystemExit(f"apply failed ({setup.returncode}):\n{setup.stderr[-2000:]}")
    return argv


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n", "--runs", type=int, default=15, help="runs of each command (default 15)"
    )
    parser.add_argument(
        "--importtime", action="store_true", help="also print the slowest imports of fire"
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep the environment's bytecode setting (measures recompiling on every start)",
    )
    parser.add_argument(
        "--against",
        metavar="PYTHON",
        help="also time the fire by this interpreter (another installation), interleaved",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = dict(os.environ)
        # Plugins enabled, as users run it: every installed provider stays registered.
        env.pop("CRONPLAN_DISABLE_PLUGINS", None)
        env.pop("PYTHONPATH", None)  # measure the installed package, nothing injected at startup
        if not args.no_bytecode:
            # An installed package has compiled bytecode; an editable checkout run with
            # PYTHONDONTWRITEBYTECODE recompiles every module on every start. Cache it, outside the tree.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        # Occurrences a minute ahead, one second apart: each fire is a first claim and moves the arm on.
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1)
        base = _project(root / "this", sys.executable, env)
        # The other installation gets a project of its own: the two must not share (and checkpoint) files.
        other = _project(root / "other", args.against, env) if args.against else []

        # Warm the OS file cache for every command (the first run of anything is slower).
        _timed([sys.executable, "-c", "pass"], root, env)
        warm_at = _fmt(start - timedelta(seconds=1))
        for argv in (base, other) if other else (base,):
            _timed([*argv, "fire", "--job-id", "bench", "--fire-at", warm_at], root, env)

        fire_times: list[float] = []
        pass_times: list[float] = []
        other_times: list[float] = []
        fire_cpu: list[float] = []
        pass_cpu: list[float] = []
        other_cpu: list[float] = []
        for i in range(args.runs):
            t, _ = _timed([sys.executable, "-c", "pass"], root, env, pass_cpu)
            pass_times.append(t)
            fire_at = start + timedelta(seconds=2 * i)
            t, proc = _timed(
                [*base, "fire", "--job-id", "bench", "--fire-at", _fmt(fire_at)],
                root,
                env,
                fire_cpu,
            )
            _check(i, proc)
            fire_times.append(t)
            if args.against:
                fire_at += timedelta(seconds=1)
                t, proc = _timed(
                    [*other, "fire", "--job-id", "bench", "--fire-at", _fmt(fire_at)],
                    root,
                    env,
                    other_cpu,
                )
                _check(i, proc)
                other_times.append(t)

        fire_med = statistics.median(fire_times)
        pass_med = statistics.median(pass_times)
        print(f"runs:                       {args.runs} of each, interleaved")
        cache = (
            "off (recompiled every start)"
            if args.no_bytecode
            else "on (as for an installed package)"
        )
        print(f"bytecode cache:             {cache}")
        print(f"python -c pass (median):    {pass_med * 1000:.1f} ms")
        print(
            f"cronplan fire (median):     {fire_med * 1000:.1f} ms  (cold process: claim, run `true`, "
            "record, re-arm on the local provider)"
        )
        print(
            f"cronplan fire (min / max):  {min(fire_times) * 1000:.1f} / {max(fire_times) * 1000:.1f} ms"
        )
        print(
            f"cpu time (median):          pass {statistics.median(pass_cpu) * 1000:.1f} ms, "
            f"fire {statistics.median(fire_cpu) * 1000:.1f} ms "
            f"({statistics.median(fire_cpu) / statistics.median(pass_cpu):.1f}x)"
        )
        if args.against:
            other_med = statistics.median(other_times)
            print(
                f"--against fire (median):    {other_med * 1000:.1f} ms  "
                f"({other_med / pass_med:.1f}x pass; cpu {statistics.median(other_cpu) * 1000:.1f} ms)"
            )
        ratio = fire_med / pass_med
        verdict = "within" if ratio <= TARGET else "OVER"
        print(
            f"ratio:                      {ratio:.1f}x python -c pass  ({verdict} the {TARGET:g}x target)"
        )

        if args.importtime:
            fire_at = start + timedelta(seconds=2 * args.runs + 1)
            proc = subprocess.run(
                [
                    sys.executable,
                    "-X",
                    "importtime",
                    "-m",
                    "cronplan",
                    "--config",
                    str(root / "this" / "cronplan.yaml"),
                    "fire",
                    "--job-id",
                    "bench",
                    "--fire-at",
                    _fmt(fire_at),
                ],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
            )
            rows = []
            for line in proc.stderr.splitlines():
                if not line.startswith("import time:") or "cumulative" in line:
                    continue
                _self_us, cum_us, name = line[len("import time:") :].split("|", 2)
                if not name.startswith(
                    "  "
                ):  # a top-level import (nested ones are indented further)
                    rows.append((int(cum_us), name.strip()))
            print("slowest imports (cumulative, top-level packages):")
            for cum, name in sorted(rows, reverse=True)[:12]:
                print(f"  {cum / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
