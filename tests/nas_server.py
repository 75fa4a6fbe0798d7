"""A real NAS test server on 127.0.0.1 (SPEC §10), for tests and the benchmark — not a mock.

It serves the portal's three calls (provision with upsert by job_id and dedup by dedup_key, cancel, list)
behind a bearer token, publishes a JWKS (an RS256 and an Ed25519 key generated at start) with a fetch
counter, and runs a scheduler thread that fires each arm at its ``fire_at``: a JWT-signed
``POST {agent_callback_url}/api/cron/fire``, retried (bounded) on anything but 2xx.

Fault injection is deterministic: whether a call fails, and how (500, 503, 429 + Retry-After, a connection
dropped before or after the call took effect), is drawn from ``seed`` and the call itself (method, path,
body, and how many times that same call was seen), so thread interleaving never changes the outcome. The
fire side has its own faults (``fire_fault_rate``): an attempt is sent twice, sent late, or its 2xx answer is
treated as lost so the fire is retried, drawn from ``seed``, the fire's dedup_key and the attempt number.

Run it standalone (the benchmark does) with ``python tests/nas_server.py --latency 0.02``: it prints one
JSON line with its URL and token, and serves until stdin closes or it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

FAULT_KINDS = ("500", "503", "429", "drop", "drop_after")
# Faults on the fire side: the fire is sent twice (duplicate), sent late (delay), or its 2xx answer is
# lost so NAS retries it (lost).
FIRE_FAULT_KINDS = ("duplicate", "delay", "lost")
JWKS_PATH = "/.well-known/jwks.json"
_FIRE_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass
class ServerArm:
    job_id: str
    fire_at: str
    agent_callback_url: str
    dedup_key: str
    schedule_id: str

    def listed(self, *, with_callback: bool = True) -> dict[str, str]:
        doc = {"job_id": self.job_id, "fire_at": self.fire_at, "schedule_id": self.schedule_id}
        if with_callback:
            # Additive to the contract's three fields; lets cronplan see callback drift.
            doc["agent_callback_url"] = self.agent_callback_url
        return doc


@dataclass(frozen=True)
class FireAttempt:
    job_id: str
    fire_at: str
    attempt: int
    status: int  # 0 when the callback could not be reached
    jti: str
    at: float


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algo = RSAAlgorithm if self.alg == "RS256" else OKPAlgorithm
        jwk: dict[str, Any] = algo.to_jwk(public, as_dict=True)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


def _new_key(alg: str) -> SigningKey:
    private: Any
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid=f"{alg.lower()}-{secrets.token_hex(4)}", alg=alg, private=private)


@dataclass
class Faults:
    error_rate: float = 0.0
    latency: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after: str | None = "1"


class NasTestServer:
    def __init__(
        self,
        *,
        token: str | None = None,
        audience: str = "agent:test-instance",
        latency: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 0,
        fault_kinds: Iterable[str] = FAULT_KINDS,
        retry_after: str | None = "1",
        fire_enabled: bool = True,
        fire_retries: int = 4,
        fire_retry_delay: float = 0.3,
        fire_duplicate: bool = False,
        fire_fault_rate: float = 0.0,
        fire_fault_kinds: Iterable[str] = FIRE_FAULT_KINDS,
        fire_delay_max: float = 2.0,
        fire_alg: str = "alternate",
        echo_token_in_errors: bool = False,
        list_callback: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token or f"nas-test-{secrets.token_urlsafe(24)}"
        self.audience = audience
        self.faults = Faults(error_rate, latency, seed, tuple(fault_kinds), retry_after)
        self.fire_enabled = fire_enabled
        self.fire_retries = fire_retries
        self.fire_retry_delay = fire_retry_delay
        self.fire_duplicate = fire_duplicate
        self.fire_fault_rate = fire_fault_rate
        self.fire_fault_kinds = tuple(fire_fault_kinds)
        self.fire_delay_max = fire_delay_max
        self.fire_alg = fire_alg
        self.echo_token_in_errors = echo_token_in_errors
        self.list_callback = list_callback
        # Called with each provision's document before it takes effect (a test may hold it there: a
        # slow provider call that lands late).
        self.before_provision: Callable[[Any], None] | None = None
        #: When set, fires go to these callback bases in turn (a load balancer in front of several
        #: ``serve`` instances) instead of each arm's own callback URL; a retry goes to the next one.
        self.fire_targets: list[str] = []
        self._target_count = 0
        self.keys: list[SigningKey] = [_new_key("RS256"), _new_key("EdDSA")]
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.arms: dict[str, ServerArm] = {}
        self.delivered: dict[
            str, str
        ] = {}  # dedup_key -> schedule_id of fires acknowledged with 2xx
        self.counters: Counter[str] = Counter()
        self.provisions: list[dict[str, Any]] = []  # bodies of provisions that took effect
        self.violations: list[str] = []
        self.fires: list[FireAttempt] = []
        self._seen: Counter[str] = Counter()
        self._in_flight: set[str] = set()
        self._next_id = 0
        self._fire_count = 0
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._httpd = _Httpd((host, port), _Handler)
        self._httpd.nas = self
        address = self._httpd.server_address
        self.host, self.port = str(address[0]), int(address[1])

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def start(self) -> NasTestServer:
        serve = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        serve.start()
        self._threads.append(serve)
        sched = threading.Thread(target=self._scheduler, name="nas-scheduler", daemon=True)
        sched.start()
        self._threads.append(sched)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self.cond:
            self.cond.notify_all()
        if self._threads:  # shutdown() waits for serve_forever, which only runs once started
            self._httpd.shutdown()
        with self.lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> NasTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test helpers

    def count(self, name: str) -> int:
        with self.lock:
            return self.counters[name]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "counters": dict(self.counters),
                "armed": sorted(
                    (a.listed() for a in self.arms.values()), key=lambda a: a["job_id"]
                ),
                "violations": list(self.violations),
            }

    def armed(self) -> dict[str, str]:
        """{job_id: fire_at} of the live arms."""
        with self.lock:
            return {a.job_id: a.fire_at for a in self.arms.values()}

    def set_faults(self, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                if not hasattr(self.faults, key):
                    raise AttributeError(key)
                setattr(self.faults, key, tuple(value) if key == "kinds" else value)

    def reset_counters(self) -> None:
        with self.lock:
            self.counters.clear()
            self.provisions.clear()
            self.fires.clear()
            self._seen.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys]}

    def rotate(self, alg: str = "RS256") -> SigningKey:
        """Publish a new key (kept alongside the old ones) and return it."""
        key = _new_key(alg)
        with self.lock:
            self.keys.append(key)
        return key

    def mint(
        self,
        job_id: str,
        fire_at: str,
        /,
        *,
        alg: str = "RS256",
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        lifetime: int = 60,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A fire JWT as NAS sends it; ``claims`` override or (with value None) remove claims."""
        key = key or next(k for k in self.keys if k.alg == alg)
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "purpose": "cron_fire",
            "iat": issued,
            "exp": issued + lifetime,
            "jti": uuid.uuid4().hex,
            "job_id": job_id,
            "fire_at": fire_at,
        }
        for name, value in claims.items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        hdr: dict[str, Any] = {"kid": key.kid}
        hdr.update(headers or {})
        return jwt.encode(
            payload,
            key.private,
            algorithm=key.alg,
            headers={k: v for k, v in hdr.items() if v is not None},
        )

    def raw_fire_request(self, body: dict[str, Any] | bytes, token: str | None) -> bytes:
        """The bytes of a fire request as NAS sends it (for ``cronplan fire --request``)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines = [
            "POST /api/cron/fire HTTP/1.1",
            "Host: 127.0.0.1",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
        ]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    def deliver(
        self, callback_base: str, job_id: str, fire_at: str, *, token: str | None = None
    ) -> int:
        """Send one fire now (e.g. NAS retrying a fire it already delivered); returns the status."""
        status, _ = self._post_fire(callback_base, job_id, fire_at, token=token, attempt=0)
        return status

    # ------------------------------------------------------------------ faults

    def fault_for(self, method: str, path: str, body: bytes) -> str | None:
        """The fault this exact call meets (deterministic per seed and per repetition), or None."""
        f = self.faults
        if f.error_rate <= 0:
            return None
        call = f"{method} {path} {hashlib.sha256(body).hexdigest()}"
        with self.lock:
            self._seen[call] += 1
            n = self._seen[call]
        rng = random.Random(f"{f.seed}|{call}|{n}")
        if rng.random() >= f.error_rate:
            return None
        return f.kinds[int(rng.random() * len(f.kinds))]

    def fire_fault_for(self, dedup_key: str, attempt: int) -> tuple[str | None, float]:
        """The fault attempt ``attempt`` of the fire ``dedup_key`` meets, and the delay it draws.

        Deterministic per seed, fire and attempt, like ``fault_for``."""
        if self.fire_fault_rate <= 0:
            return None, 0.0
        rng = random.Random(f"{self.faults.seed}|fire|{dedup_key}|{attempt}")
        if rng.random() >= self.fire_fault_rate:
            return None, 0.0
        kind = self.fire_fault_kinds[int(rng.random() * len(self.fire_fault_kinds))]
        return kind, rng.uniform(0.2, self.fire_delay_max)

    # ------------------------------------------------------------------ the portal calls

    def provision(self, doc: Any) -> tuple[int, dict[str, Any]]:
        if self.before_provision is not None:
            self.before_provision(doc)
        problem = _provision_problem(doc)
        if problem:
            with self.lock:
                self.counters["contract_violations"] += 1
                self.violations.append(problem)
            return 400, {"error": problem}
        with self.cond:
            current = self.arms.get(doc["job_id"])
            if current is not None and current.dedup_key == doc["dedup_key"]:
                self.counters["provision_noop"] += 1
                return 200, {"schedule_id": current.schedule_id}
            if doc["dedup_key"] in self.delivered:
                # That occurrence already fired: provisioning its dedup_key again changes nothing.
                self.counters["provision_already_fired"] += 1
                return 200, {"schedule_id": self.delivered[doc["dedup_key"]]}
            self._next_id += 1
            arm = ServerArm(
                job_id=doc["job_id"],
                fire_at=doc["fire_at"],
                agent_callback_url=doc["agent_callback_url"],
                dedup_key=doc["dedup_key"],
                schedule_id=f"sch-{self._next_id:06d}",
            )
            self.counters["provision_replaced" if current else "provision_created"] += 1
            self.arms[arm.job_id] = arm
            self.provisions.append(dict(doc))
            if self.fire_enabled:  # a scheduler that never fires need not wake for every arm
                self.cond.notify_all()
            return 200, {"schedule_id": arm.schedule_id}

    def cancel(self, doc: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(doc, dict) or not isinstance(doc.get("job_id"), str):
            with self.lock:
                self.counters["contract_violations"] += 1
                self.violations.append(f"cancel without job_id: {doc!r}")
            return 400, {"error": "job_id is required"}
        with self.cond:
            removed = self.arms.pop(doc["job_id"], None)
            self.counters["cancel_removed" if removed else "cancel_noop"] += 1
            self.cond.notify_all()
        return 200, {"ok": True}

    def list_armed(self) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.counters["list_calls"] += 1
            armed = sorted(
                (a.listed(with_callback=self.list_callback) for a in self.arms.values()),
                key=lambda a: a["job_id"],
            )
        return 200, {"armed": armed}

    # ------------------------------------------------------------------ the scheduler

    def _scheduler(self) -> None:
        while not self._stop.is_set():
            with self.cond:
                now = time.time()
                due: list[ServerArm] = []
                wait = 1.0
                if self.fire_enabled:
                    for arm in self.arms.values():
                        if arm.schedule_id in self._in_flight:
                            continue
                        at = _epoch(arm.fire_at)
                        if at <= now:
                            due.append(arm)
                        else:
                            wait = min(wait, at - now)
                    for arm in due:
                        self._in_flight.add(arm.schedule_id)
                if not due:
                    self.cond.wait(max(0.01, wait))
                    continue
            for arm in due:
                t = threading.Thread(target=self._deliver_arm, args=(arm,), daemon=True)
                t.start()

    def _deliver_arm(self, arm: ServerArm) -> None:
        delivered = False
        duplicate_pending = self.fire_duplicate
        attempt = 0
        while attempt < self.fire_retries and not self._stop.is_set():
            attempt += 1
            fault, delay = self.fire_fault_for(arm.dedup_key, attempt)
            if fault is not None:
                with self.lock:
                    self.counters[f"fire_fault_{fault}"] += 1
            if fault == "delay":
                self._stop.wait(delay)  # a late delivery
            target = self._fire_target(arm.agent_callback_url)
            status, _ = self._post_fire(target, arm.job_id, arm.fire_at, attempt=attempt)
            if 200 <= status < 300 and fault == "lost":
                # The callback ran it, but its answer never reached NAS: NAS retries as after a failure.
                status = 0
            if 200 <= status < 300 and fault == "duplicate":
                self._post_fire(
                    self._fire_target(arm.agent_callback_url),
                    arm.job_id,
                    arm.fire_at,
                    attempt=attempt,
                )
            if 200 <= status < 300:
                delivered = True
                if duplicate_pending:
                    # As if the acknowledgement were lost: NAS sends the same fire again.
                    duplicate_pending = False
                    continue
                break
            self._stop.wait(self.fire_retry_delay * 2 ** (attempt - 1))
        with self.cond:
            self._in_flight.discard(arm.schedule_id)
            current = self.arms.get(arm.job_id)
            if current is not None and current.schedule_id == arm.schedule_id:
                del self.arms[arm.job_id]
            if delivered:
                self.delivered[arm.dedup_key] = arm.schedule_id
                self.counters["fires_delivered"] += 1
            else:
                self.counters["fires_dead"] += 1

    def _fire_target(self, callback: str) -> str:
        targets = self.fire_targets
        if not targets:
            return callback
        with self.lock:
            self._target_count += 1
            return targets[self._target_count % len(targets)]

    def _post_fire(
        self,
        callback_base: str,
        job_id: str,
        fire_at: str,
        *,
        attempt: int,
        token: str | None = None,
    ) -> tuple[int, str]:
        if token is None:
            with self.lock:
                self._fire_count += 1
                n = self._fire_count
            alg = self.fire_alg
            if alg == "alternate":
                alg = "RS256" if n % 2 else "EdDSA"
            token = self.mint(job_id, fire_at, alg=alg)
        body = json.dumps({"job_id": job_id, "fire_at": fire_at}).encode()
        req = urllib.request.Request(
            callback_base.rstrip("/") + "/api/cron/fire",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        status, text = 0, ""
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, text = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            status, text = 0, type(exc).__name__
        jti = jwt.decode(token, options={"verify_signature": False}).get("jti", "")
        with self.lock:
            self.counters["fire_attempts"] += 1
            self.fires.append(FireAttempt(job_id, fire_at, attempt, status, str(jti), time.time()))
        return status, text


def _epoch(fire_at: str) -> float:
    return datetime.strptime(fire_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _provision_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "provision body must be a JSON object"
    for name in ("job_id", "fire_at", "agent_callback_url", "dedup_key"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            return f"provision body needs a string {name}"
    if not _FIRE_AT.fullmatch(doc["fire_at"]):
        return f"fire_at is not RFC 3339 UTC with Z at second precision: {doc['fire_at']!r}"
    if doc["dedup_key"] != f"{doc['job_id']}:{doc['fire_at']}":
        return f"dedup_key {doc['dedup_key']!r} is not job_id:fire_at"
    if not re.match(r"^https?://[^/]+", doc["agent_callback_url"]):
        return f"agent_callback_url is not an http(s) URL: {doc['agent_callback_url']!r}"
    return None


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    nas: NasTestServer

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.nas.lock:
            self.nas._conns.add(request)
            self.nas.counters["connections_accepted"] += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) or a dropped connection is expected here; count, don't print.
        exc = sys.exc_info()[1]
        with self.nas.lock:
            self.nas.counters[f"server_error_{type(exc).__name__}"] += 1

    def shutdown_request(self, request: Any) -> None:
        with self.nas.lock:
            self.nas._conns.discard(request)
        super().shutdown_request(request)


class _Headers(dict[str, str]):
    """Request headers by lower-cased name (the last of repeated ones), read like ``HTTPMessage``."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Kept although every answer leaves in one write (_send): stdlib error pages still write twice.
    disable_nagle_algorithm = True
    server: _Httpd
    raw_requestline: bytes  # set by handle_one_request() before parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def parse_request(self) -> bool:
        # The stdlib parses headers with the email package, about half of this server's CPU per call;
        # the benchmark (2,000 calls at parallelism 32) shares two cores between it and the client.
        # What is read here is all this server needs: request line, headers, keep-alive.
        self.command = None  # type: ignore[assignment]  # as the stdlib: send_error() checks it
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(400, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        headers = _Headers()
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            if len(line) > 65536 or len(headers) >= 100 or not colon:
                self.send_error(400, "Bad request headers")
                return False
            headers[name.strip().lower()] = value.strip()
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.1":
            self.close_connection = connection == "close"
        else:
            self.close_connection = connection != "keep-alive"
        return True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        nas = self.server.nas
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with nas.lock:
            nas.counters[f"{method} {path}"] += 1
        if method == "GET" and path == JWKS_PATH:
            with nas.lock:
                nas.counters["jwks_fetches"] += 1
            self._send(200, nas.jwks())
            return
        if not path.startswith("/api/agent-cron/") and not path.startswith("/_test/"):
            self._send(404, {"error": "not found"})
            return
        if not self._authorized(nas):
            with nas.lock:
                nas.counters["unauthorized"] += 1
            message = "invalid or expired token"
            if nas.echo_token_in_errors:
                message += f": {self.headers.get('Authorization', '')}"
            self._send(401, {"error": message})
            return
        if path.startswith("/_test/"):
            self._send(200, nas.snapshot())
            return
        if nas.faults.latency > 0:
            time.sleep(nas.faults.latency)
        fault = nas.fault_for(method, path, body)
        if fault is not None:
            with nas.lock:
                nas.counters[f"fault_{fault}"] += 1
            if fault == "drop":
                self._drop()
                return
            if fault in ("500", "503"):
                self._send(int(fault), {"error": "injected failure"})
                return
            if fault == "429":
                headers = {"Retry-After": nas.faults.retry_after} if nas.faults.retry_after else {}
                self._send(429, {"error": "slow down"}, headers)
                return
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        if method == "POST" and path == "/api/agent-cron/provision":
            status, answer = nas.provision(doc)
        elif method == "POST" and path == "/api/agent-cron/cancel":
            status, answer = nas.cancel(doc)
        elif method == "GET" and path == "/api/agent-cron/list":
            status, answer = nas.list_armed()
        else:
            status, answer = 404, {"error": "not found"}
        if fault == "drop_after":
            self._drop()  # the call took effect, but the caller never hears so
            return
        self._send(status, answer)

    def _authorized(self, nas: NasTestServer) -> bool:
        expected = f"Bearer {nas.token}".encode()
        given = (self.headers.get("Authorization") or "").encode()
        return hmac.compare_digest(expected, given)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        # Status line, headers and body in one write: one segment for the client to read, not two.
        data = json.dumps(doc).encode()
        lines = [
            f"{self.protocol_version} {status} {self.responses[status][0]}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
        ]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = "\r\n".join(lines) + "\r\n\r\n"
        self.wfile.write(head.encode("latin-1") + data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the NAS test server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--no-fire", action="store_true", help="never fire arms")
    args = parser.parse_args(argv)
    server = NasTestServer(
        token=args.token,
        port=args.port,
        latency=args.latency,
        error_rate=args.error_rate,
        seed=args.seed,
        fire_enabled=not args.no_fire,
    ).start()
    info = {
        "url": server.url,
        "token": server.token,
        "jwks_url": server.jwks_url,
        "issuer": server.issuer,
        "audience": server.audience,
    }
    print(json.dumps(info), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    def wait_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
