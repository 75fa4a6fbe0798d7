"""Benchmark: a top-of-the-hour burst of fires into `cronplan serve` (NAS provider).

Every job is armed at the same instant T. The NAS test server (tests/nas_server.py, in this process) fires
them all at T, one thread per arm, with its own retry policy (4 attempts, 0.3 s doubling back-off: about
2 s of retry window), and `cronplan serve` (separate processes) authenticates each JWT, claims the
occurrence durably in the ledger, answers 202 (200 for a duplicate), runs `true` and re-arms the job an
hour on. Two set-ups:

- ``sqlite``: one `serve` on the SQLite ledger;
- ``postgres``: three `serve` instances on one PostgreSQL ledger (a throwaway cluster started with
  scripts/pg-cluster and stopped at the end); the NAS test server spreads the fires over the three, and
  sends a retry to the next instance.

Printed, from the same run:

- the time from T to each first 2xx answer (p50 / p99 / max): the answer follows the durable claim;
- how many fires were answered 2xx, needed a retry (and what the failed attempts got), or died; the
  target is every fire answered within 10 s;
- duplicates: 200 answers (a fire delivered again after it was claimed);
- exactly-once: one run per job for T in the ledger, no more;
- the baseline: the same number of bare HTTP round trips from the same sender threads to a trivial
  server, to show what the sender alone costs on this machine.

``--sweep`` finds the limit: fires spread evenly over several seconds at a rising rate (fires per second)
until some fire is given up by the provider (its answers no longer came within the retry window).

    python benchmarks/burst.py [N ...] [--ledger sqlite|postgres|both] [--sweep] [--json FILE]
    # default: 1000 5000 on both ledgers

Everything it starts (serve processes, the NAS test server, the PostgreSQL cluster) is stopped at the end;
each burst is bounded (120 s for the answers, 60 s for the runs to settle).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nas_server import NasTestServer  # noqa: E402

TARGET_ANSWER_S = 10.0
PG_INSTANCES = 3
ANSWER_BOUND_S = 120.0
SETTLE_BOUND_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited early ({proc.returncode})")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("serve did not become healthy")


# --------------------------------------------------------------------------- the ledgers


class _SqliteLedger:
    url = "sqlite:///.cronplan/state.db"

    def __init__(self, root: Path) -> None:
        self.db = root / ".cronplan" / "state.db"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return con.execute(sql.replace("{runs}", "runs")).fetchall()
        finally:
            con.close()


class _PostgresLedger:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql.replace("{runs}", "cronplan_runs")).fetchall())  # type: ignore[arg-type]


@contextmanager
def _postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (scripts/pg-cluster), stopped and removed at the end."""
    from tests.fixtures_pg import PgCluster

    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cronplan-bench-pg-")))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(cluster.run_dir, ignore_errors=True)


def _fresh_database(server_dsn: str) -> str:
    from tests.fixtures_pg import create_database

    return create_database(server_dsn)[1]


# --------------------------------------------------------------------------- one burst


def burst(
    n: int,
    tmp: Path,
    *,
    ledger: str = "sqlite",
    pg_server: str | None = None,
    per_second: int | None = None,
) -> dict[str, Any]:
    """One burst of ``n`` fires (all at T, or ``per_second`` a second from T on); returns its figures."""
    instances = PG_INSTANCES if ledger == "postgres" else 1
    nas = NasTestServer(fire_alg="EdDSA").start()
    root = tmp / f"burst-{ledger}-{n}-{per_second or n}"
    root.mkdir()
    ports = [_free_port() for _ in range(instances)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    store: _SqliteLedger | _PostgresLedger
    if ledger == "postgres":
        assert pg_server is not None
        store = _PostgresLedger(_fresh_database(pg_server))
    else:
        store = _SqliteLedger(root)
    options = {
        "portal_url": nas.url,
        "jwks_url": nas.jwks_url,
        "issuer": nas.issuer,
        "audience": nas.audience,
    }
    (root / "cronplan.yaml").write_text(
        f"jobs: jobs.json\nprovider: nas\ntimezone: UTC\ncallback_url: {urls[0]}\n"
        f"state: {json.dumps(store.url)}\nproviders:\n  nas: {json.dumps(options)}\n"
    )
    env = dict(os.environ, CRONPLAN_NAS_TOKEN=nas.token)
    env.pop("CRONPLAN_DISABLE_PLUGINS", None)
    rate = per_second or n
    seconds = math.ceil(n / rate)
    # T: far enough ahead for apply and serve's start; every job's first occurrence.
    t = datetime.fromtimestamp(math.ceil(time.time()) + 20 + n // 250, timezone.utc)
    jobs = [
        {
            "id": f"b-{i:05d}",
            "schedule": {
                "kind": "interval",
                "minutes": 60,
                "start_at": _ts(t + timedelta(seconds=i // rate)),
            },
            "command": ["true"],
        }
        for i in range(n)
    ]
    (root / "jobs.json").write_text(json.dumps({"jobs": jobs}))
    base = [sys.executable, "-m", "cronplan", "--config", str(root / "cronplan.yaml")]
    res = subprocess.run(
        [*base, "-q", "apply", "--auto-approve", "--parallelism", "32"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        nas.stop()
        raise SystemExit(f"apply failed ({res.returncode}): {res.stderr[-1500:]}")
    if instances > 1:
        nas.fire_targets = urls
    lists_before = nas.count("list_calls")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            with open(root / f"serve-{port}.stderr", "wb") as err:
                procs.append(
                    subprocess.Popen(
                        [*base, "-q", "serve", "--port", str(port)], cwd=root, env=env, stderr=err
                    )
                )
        for url, proc in zip(urls, procs, strict=True):
            _wait_healthy(url, proc)
        if time.time() >= t.timestamp():
            raise SystemExit(f"setup took past T ({_ts(t)}); raise the lead time")
        deadline = t.timestamp() + seconds + ANSWER_BOUND_S
        while time.time() < deadline:
            if nas.count("fires_delivered") + nas.count("fires_dead") >= n:
                break
            time.sleep(0.2)
        # Runs finish and re-arms land after the answers: wait for the ledger to settle.
        settle = time.time() + SETTLE_BOUND_S
        while time.time() < settle:
            busy = store.query("SELECT count(*) FROM {runs} WHERE status IN ('claimed', 'running')")
            if not busy[0][0]:
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        nas.stop()
    # Every run is of its job's first occurrence: one row per (job, occurrence).
    per_occurrence = store.query("SELECT job_id, count(*) FROM {runs} GROUP BY job_id, fire_at")
    statuses = dict(store.query("SELECT status, count(*) FROM {runs} GROUP BY status"))
    attempts = list(nas.fires)
    first_ok: dict[str, float] = {}
    for a in attempts:
        if 200 <= a.status < 300:
            first_ok[a.job_id] = min(a.at, first_ok.get(a.job_id, a.at))
    due = {f"b-{i:05d}": t.timestamp() + i // rate for i in range(n)}
    latencies = [at - due[job] for job, at in first_ok.items()]
    return {
        "ledger": ledger,
        "instances": instances,
        "n": n,
        "per_second": rate,
        "first_ok": sum(1 for a in attempts if a.attempt == 1 and 200 <= a.status < 300),
        "retried": sum(1 for a in attempts if a.attempt > 1),
        "failed_attempts": dict(Counter(a.status for a in attempts if not 200 <= a.status < 300)),
        "duplicates": sum(1 for a in attempts if a.status == 200),
        "dead": nas.count("fires_dead"),
        "answered": len(first_ok),
        "p50": _pct(latencies, 50),
        "p99": _pct(latencies, 99),
        "max": max(latencies) if latencies else float("nan"),
        "jobs_run": len(per_occurrence),
        "runs_more_than_once": sum(1 for _, c in per_occurrence if c > 1),
        "statuses": statuses,
        "list_calls_during_burst": nas.count("list_calls") - lists_before,
        "rearmed": sum(1 for v in nas.armed().values() if v > _ts(t + timedelta(minutes=59))),
    }


# --------------------------------------------------------------------------- the baseline


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def baseline(n: int) -> float:
    """Seconds for ``n`` simultaneous POSTs (one thread each, as the NAS sender) to a trivial server."""
    import urllib.request

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    done: list[float] = []
    start = time.time()

    def one() -> None:
        req = urllib.request.Request(url, data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
            done.append(time.time() - start)
        except OSError:
            pass

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    httpd.shutdown()
    httpd.server_close()
    return max(done) if done else float("nan")


# --------------------------------------------------------------------------- output


def _where(ledger: str, instances: int) -> str:
    if ledger == "sqlite":
        return "SQLite ledger, one serve"
    return f"PostgreSQL ledger, {instances} serve instances"


def _title(f: dict[str, Any]) -> str:
    where = _where(f["ledger"], f["instances"])
    if f["per_second"] >= f["n"]:
        return f"burst of {f['n']} fires at one instant ({where}):"
    return f"{f['n']} fires at {f['per_second']} fires/s ({where}):"


def report(f: dict[str, Any]) -> None:
    n = f["n"]
    verdict = "within" if f["answered"] == n and f["max"] <= TARGET_ANSWER_S else "OVER"
    print(_title(f))
    print(f"  answered 2xx:          {f['answered']} of {n} ({f['first_ok']} at the first attempt)")
    print(
        f"  retries / dead:        {f['retried']} / {f['dead']}; failed attempts by status "
        f"{f['failed_attempts'] or '{}'} (0: no answer)"
    )
    print(f"  duplicates (200):      {f['duplicates']}")
    print(
        f"  time to durable claim: p50 {f['p50']:.2f} s  p99 {f['p99']:.2f} s  "
        f"max {f['max']:.2f} s  ({verdict} the {TARGET_ANSWER_S:g} s target)"
    )
    if f["per_second"] >= n and f["max"] > 0:
        print(
            f"  throughput:            {f['answered'] / f['max']:.0f} fires/s answered (answered / max)"
        )
    print(
        f"  exactly once:          {f['jobs_run']} occurrences ran, "
        f"{f['runs_more_than_once']} more than once; runs by status {f['statuses']}"
    )
    print(
        f"  re-armed an hour on:   {f['rearmed']} of {n}; list calls during the burst: "
        f"{f['list_calls_during_burst']}"
    )
    if "baseline_s" in f:
        print(
            f"  baseline:              {n} bare POSTs from the same sender: {f['baseline_s']:.2f} s"
        )


SWEEP_RATES = (200, 400, 600, 800, 1000, 1500)


def sweep(
    tmp: Path, ledger: str, pg_server: str | None, seconds: int, results: list[dict[str, Any]]
) -> None:
    """Rising rates, each for ``seconds`` seconds, until some fire is not answered 2xx within the target
    (the provider's per-attempt window) at its first attempt; the limit is the last rate before."""
    limit: int | None = None
    over: int | None = None
    for rate in SWEEP_RATES:
        f = burst(rate * seconds, tmp, ledger=ledger, pg_server=pg_server, per_second=rate)
        f["sweep"] = True
        results.append(f)
        report(f)
        if f["dead"] or f["first_ok"] < f["n"] or f["max"] > TARGET_ANSWER_S:
            over = rate
            break
        limit = rate
    print(
        f"limit ({_where(ledger, PG_INSTANCES if ledger == 'postgres' else 1)}): "
        f"{limit if limit is not None else f'< {SWEEP_RATES[0]}'} fires/s for {seconds} s, every "
        f"fire answered at its first attempt within {TARGET_ANSWER_S:g} s"
        + (f"; at {over} fires/s not" if over else "")
    )
    results.append({"ledger": ledger, "sweep_limit": limit, "sweep_over": over, "seconds": seconds})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 5000])
    parser.add_argument("--ledger", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--sweep", action="store_true", help="find the limit in fires/s (rising rates)"
    )
    parser.add_argument("--sweep-seconds", type=int, default=5, metavar="S")
    parser.add_argument("--sweep-only", action="store_true", help="no bursts, just the sweep")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--json", metavar="FILE", help="also write the figures as JSON (for --plot)"
    )
    args = parser.parse_args()
    ledgers = ["sqlite", "postgres"] if args.ledger == "both" else [args.ledger]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_dir, _maybe_postgres(ledgers) as pg_server:
        tmp = Path(tmp_dir)
        for ledger in ledgers:
            for n in [] if args.sweep_only else args.sizes:
                f = burst(n, tmp, ledger=ledger, pg_server=pg_server)
                if not args.no_baseline:
                    f["baseline_s"] = baseline(n)
                results.append(f)
                report(f)
            if args.sweep or args.sweep_only:
                sweep(tmp, ledger, pg_server, args.sweep_seconds, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


@contextmanager
def _maybe_postgres(ledgers: list[str]) -> Iterator[str | None]:
    if "postgres" not in ledgers:
        yield None
        return
    given = os.environ.get("CRONPLAN_TEST_PG_DSN")
    if given:
        yield given
        return
    with _postgres_server() as dsn:
        yield dsn


if __name__ == "__main__":
    main()
