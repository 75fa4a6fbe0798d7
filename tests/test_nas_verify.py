"""NasProvider.verify(): the fire JWT of SPEC §10, every attack refused; the JWKS cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cronplan_nas import NasProvider
from cryptography.hazmat.primitives import serialization

from cronplan.errors import AuthError, BadRequest, ProviderError, ProviderUnavailable
from cronplan.model import FireCall, HttpRequest
from cronplan.timefmt import parse_ts
from tests.fixtures_nas import nas_settings
from tests.nas_server import NasTestServer, _new_key

FIRE_AT = "2026-11-27T09:00:00Z"
JOB = "backup.nightly"


def body(job_id: str = JOB, fire_at: str = FIRE_AT) -> bytes:
    return json.dumps({"job_id": job_id, "fire_at": fire_at}).encode()


def request(token: str | None, data: bytes | None = None, *, scheme: str = "Bearer") -> HttpRequest:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"{scheme} {token}"
    return HttpRequest("POST", "/api/cron/fire", headers, body() if data is None else data)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(server: NasTestServer, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    doc: dict[str, Any] = {
        "iss": server.issuer,
        "aud": server.audience,
        "purpose": "cron_fire",
        "iat": now,
        "exp": now + 60,
        "jti": "j-1",
        "job_id": JOB,
        "fire_at": FIRE_AT,
    }
    doc.update(over)
    return doc


@pytest.fixture
def server() -> Iterator[NasTestServer]:
    s = NasTestServer(fire_enabled=False)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def provider(server: NasTestServer, tmp_path: Path) -> Iterator[NasProvider]:
    p = NasProvider(nas_settings(server, tmp_path))
    yield p
    p.close()


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_valid_fire_is_accepted(provider: NasProvider, server: NasTestServer, alg: str) -> None:
    call = provider.verify(request(server.mint(JOB, FIRE_AT, alg=alg)))
    assert call == FireCall(JOB, parse_ts(FIRE_AT))


def test_fire_at_compared_as_instants(provider: NasProvider, server: NasTestServer) -> None:
    token = server.mint(JOB, "2026-11-27T10:00:00+01:00")
    call = provider.verify(request(token, body(fire_at=FIRE_AT)))
    assert call.fire_at == parse_ts(FIRE_AT)


def test_leeway_tolerates_small_clock_skew(provider: NasProvider, server: NasTestServer) -> None:
    # Expired 20 s ago, or issued 20 s in the future: within the 30 s leeway.
    provider.verify(request(server.mint(JOB, FIRE_AT, now=time.time() - 80)))
    provider.verify(request(server.mint(JOB, FIRE_AT, now=time.time() + 20)))


def test_scheme_is_case_insensitive(provider: NasProvider, server: NasTestServer) -> None:
    provider.verify(request(server.mint(JOB, FIRE_AT), scheme="bearer"))


def test_without_body_binding_the_body_decides(server: NasTestServer, tmp_path: Path) -> None:
    p = NasProvider(nas_settings(server, tmp_path, require_body_binding=False))
    token = server.mint(JOB, FIRE_AT, job_id=None, fire_at=None)
    assert p.verify(request(token, body("other", "2026-12-01T00:00:00Z"))) == FireCall(
        "other", parse_ts("2026-12-01T00:00:00Z")
    )


# --------------------------------------------------------------------------- attacks


def _none_token(server: NasTestServer) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": server.keys[0].kid}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(server)).encode())}."


def _hs256_with_public_key(server: NasTestServer) -> str:
    rsa_key = server.keys[0]
    pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(server)).encode())}"
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def _rogue_key_token(server: NasTestServer, *, reuse_kid: bool) -> str:
    rogue = _new_key("RS256")
    kid = server.keys[0].kid if reuse_kid else "rogue-key"
    return jwt.encode(claims(server), rogue.private, algorithm="RS256", headers={"kid": kid})


ATTACKS: dict[str, Any] = {
    "expired": lambda s: (s.mint(JOB, FIRE_AT, now=time.time() - 200), body(), "expired"),
    "wrong audience": lambda s: (
        s.mint(JOB, FIRE_AT, aud="agent:someone-else"),
        body(),
        "audience",
    ),
    "wrong issuer": lambda s: (s.mint(JOB, FIRE_AT, iss="https://evil.example"), body(), "issuer"),
    "wrong purpose": lambda s: (s.mint(JOB, FIRE_AT, purpose="login"), body(), "purpose"),
    "no purpose": lambda s: (s.mint(JOB, FIRE_AT, purpose=None), body(), "purpose"),
    "alg none": lambda s: (_none_token(s), body(), "'none' is not allowed"),
    "HS256 with the public key": lambda s: (
        _hs256_with_public_key(s),
        body(),
        "'HS256' is not allowed",
    ),
    "RS384": lambda s: (s.mint(JOB, FIRE_AT, headers={"alg": "RS384"}), body(), "not allowed"),
    "key not in JWKS": lambda s: (
        _rogue_key_token(s, reuse_kid=False),
        body(),
        "not in the NAS JWKS",
    ),
    "foreign key under a known kid": lambda s: (
        _rogue_key_token(s, reuse_kid=True),
        body(),
        "signature",
    ),
    "tampered job_id": lambda s: (s.mint(JOB, FIRE_AT), body(job_id="other-job"), "another job_id"),
    "tampered fire_at": lambda s: (
        s.mint(JOB, FIRE_AT),
        body(fire_at="2026-11-27T09:00:01Z"),
        "another fire_at",
    ),
    "missing header": lambda s: (None, body(), "no 'Authorization: Bearer'"),
    "not yet valid (iat)": lambda s: (
        s.mint(JOB, FIRE_AT, now=time.time() + 120),
        body(),
        "not valid yet",
    ),
    "not yet valid (nbf)": lambda s: (
        s.mint(JOB, FIRE_AT, nbf=int(time.time()) + 90),
        body(),
        "not valid yet",
    ),
    "lifetime over 120 s": lambda s: (s.mint(JOB, FIRE_AT, lifetime=600), body(), "lifetime"),
    "missing jti": lambda s: (s.mint(JOB, FIRE_AT, jti=None), body(), "'jti'"),
    "missing exp": lambda s: (s.mint(JOB, FIRE_AT, exp=None), body(), "'exp'"),
    "missing kid": lambda s: (s.mint(JOB, FIRE_AT, headers={"kid": None}), body(), "no 'kid'"),
    "token without binding claims": lambda s: (
        s.mint(JOB, FIRE_AT, job_id=None),
        body(),
        "another job_id",
    ),
    "RS256 token under the Ed25519 key's kid": lambda s: (
        s.mint(JOB, FIRE_AT, key=s.keys[0], headers={"kid": s.keys[1].kid}),
        body(),
        "is for EdDSA",
    ),
    "garbage token": lambda s: ("not.a.jwt", body(), "well-formed"),
    "modified payload": lambda s: (_flip_payload(s.mint(JOB, FIRE_AT)), body(), "signature"),
}


def _flip_payload(token: str) -> str:
    head, payload, sig = token.split(".")
    doc = json.loads(base64.urlsafe_b64decode(payload + "=="))
    doc["aud"] = doc["aud"]  # same claims, but re-encoded with the job changed
    doc["job_id"] = "other-job"
    return f"{head}.{b64(json.dumps(doc).encode())}.{sig}"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_refused(provider: NasProvider, server: NasTestServer, attack: str) -> None:
    token, data, expected = ATTACKS[attack](server)
    with pytest.raises(AuthError) as info:
        provider.verify(request(token, data))
    assert expected in str(info.value)
    assert str(info.value).startswith("fire rejected: ")


def test_other_schemes_are_refused(provider: NasProvider, server: NasTestServer) -> None:
    with pytest.raises(AuthError, match="Bearer"):
        provider.verify(request(server.mint(JOB, FIRE_AT), scheme="Basic"))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1]",
        json.dumps({"fire_at": FIRE_AT}).encode(),
        json.dumps({"job_id": JOB}).encode(),
        json.dumps({"job_id": "../etc", "fire_at": FIRE_AT}).encode(),
        json.dumps({"job_id": JOB + "\n", "fire_at": FIRE_AT}).encode(),
        json.dumps({"job_id": JOB, "fire_at": "tomorrow"}).encode(),
        json.dumps({"job_id": JOB, "fire_at": "2026-11-27T09:00:00"}).encode(),
        json.dumps({"job_id": 5, "fire_at": FIRE_AT}).encode(),
    ],
)
def test_malformed_body_with_valid_token_is_bad_request(
    provider: NasProvider, server: NasTestServer, data: bytes
) -> None:
    with pytest.raises(BadRequest):
        provider.verify(request(server.mint(JOB, FIRE_AT), data))


def test_malformed_body_without_auth_is_auth_error(provider: NasProvider) -> None:
    # Authentication comes first: an unauthenticated caller learns nothing about the body.
    with pytest.raises(AuthError):
        provider.verify(request(None, b"not json"))


def test_misconfigured_verifier_fails_closed(server: NasTestServer, tmp_path: Path) -> None:
    p = NasProvider(nas_settings(server, tmp_path, audience=""))
    with pytest.raises(ProviderUnavailable):
        p.verify(request(server.mint(JOB, FIRE_AT)))


# --------------------------------------------------------------------------- the JWKS cache


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_one_fetch_for_many_fires(provider: NasProvider, server: NasTestServer) -> None:
    for i in range(50):
        alg = "RS256" if i % 2 else "EdDSA"
        provider.verify(request(server.mint(JOB, FIRE_AT, alg=alg)))
    assert server.count("jwks_fetches") == 1


def test_disk_cache_serves_a_cold_provider(server: NasTestServer, tmp_path: Path) -> None:
    for _ in range(3):
        p = NasProvider(nas_settings(server, tmp_path))
        p.verify(request(server.mint(JOB, FIRE_AT)))
        p.close()
    assert server.count("jwks_fetches") == 1
    cache = json.loads((tmp_path / ".cronplan" / "nas-jwks.json").read_text())
    assert cache["jwks_url"] == server.jwks_url
    # Only public keys are on disk, and never the NAS token.
    text = json.dumps(cache)
    assert '"d"' not in text and server.token not in text


def test_unknown_kid_refetches_at_most_once_per_floor(
    server: NasTestServer, tmp_path: Path
) -> None:
    clock = Clock()
    p = NasProvider(nas_settings(server, tmp_path), clock=clock)
    p.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
    assert server.count("jwks_fetches") == 1
    # A kid NAS never published: the first sighting may refetch once...
    clock.now += 61
    for _ in range(5):
        with pytest.raises(AuthError, match="not in the NAS JWKS"):
            p.verify(request(_rogue_key_token(server, reuse_kid=False)))
    assert server.count("jwks_fetches") == 2
    # ...and a rotated key published meanwhile waits for the floor too.
    new = server.rotate("EdDSA")
    clock.now += 30
    with pytest.raises(AuthError, match="not in the NAS JWKS"):
        p.verify(request(server.mint(JOB, FIRE_AT, key=new, now=clock.now)))
    assert server.count("jwks_fetches") == 2
    clock.now += 31
    p.verify(request(server.mint(JOB, FIRE_AT, key=new, now=clock.now)))
    assert server.count("jwks_fetches") == 3


def test_floor_is_shared_through_the_disk(server: NasTestServer, tmp_path: Path) -> None:
    clock = Clock()
    first = NasProvider(nas_settings(server, tmp_path), clock=clock)
    first.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
    clock.now += 100
    with pytest.raises(AuthError):
        first.verify(request(_rogue_key_token(server, reuse_kid=False)))
    assert server.count("jwks_fetches") == 2
    # A cold process a moment later sees the recent attempt on disk and does not fetch again.
    clock.now += 5
    cold = NasProvider(nas_settings(server, tmp_path), clock=clock)
    with pytest.raises(AuthError):
        cold.verify(request(_rogue_key_token(server, reuse_kid=False)))
    assert server.count("jwks_fetches") == 2


def test_ttl_expiry_refetches_once(server: NasTestServer, tmp_path: Path) -> None:
    clock = Clock()
    p = NasProvider(nas_settings(server, tmp_path, jwks_ttl_seconds=600), clock=clock)
    p.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
    clock.now += 601
    for _ in range(3):
        p.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
    assert server.count("jwks_fetches") == 2


def test_unreachable_jwks_keeps_stale_keys_without_a_fetch_storm(tmp_path: Path) -> None:
    clock = Clock()
    calls: list[str] = []
    with NasTestServer(fire_enabled=False) as server:
        doc = server.jwks()

        def fetch(url: str, timeout: float) -> Any:
            calls.append(url)
            if len(calls) > 1:
                raise OSError("JWKS down")
            return doc

        p = NasProvider(
            nas_settings(server, tmp_path, jwks_ttl_seconds=600), clock=clock, jwks_fetch=fetch
        )
        p.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
        clock.now += 700  # stale: one refetch attempt fails, the old keys still verify
        for _ in range(10):
            p.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
        assert len(calls) == 2
        clock.now += 61
        p.verify(request(server.mint(JOB, FIRE_AT, now=clock.now)))
        assert len(calls) == 3


def test_no_keys_at_all_is_a_provider_error(tmp_path: Path) -> None:
    with NasTestServer(fire_enabled=False) as server:

        def fetch(url: str, timeout: float) -> Any:
            raise OSError("JWKS down")

        p = NasProvider(nas_settings(server, tmp_path), jwks_fetch=fetch)
        with pytest.raises(ProviderError, match="could not get signing keys") as info:
            p.verify(request(server.mint(JOB, FIRE_AT)))
        assert not isinstance(info.value, AuthError)


def test_private_or_symmetric_keys_in_jwks_are_ignored(tmp_path: Path) -> None:
    from cronplan_nas.jwks import keys_from_jwks

    with NasTestServer(fire_enabled=False) as server:
        public = server.jwks()["keys"]
        assert set(keys_from_jwks({"keys": public})) == {k["kid"] for k in public}
        leaked = [dict(k, d="AAAA") for k in public]
        assert keys_from_jwks({"keys": leaked}) == {}
        octet = [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]
        assert keys_from_jwks({"keys": octet}) == {}
        wrong_alg = [dict(public[0], alg="RS512")]
        assert keys_from_jwks({"keys": wrong_alg}) == {}


COLD_VERIFY = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from cronplan.model import HttpRequest
    from cronplan.provider import ProviderSettings
    from cronplan_nas import NasProvider

    opts, token, base = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    body = json.dumps({"job_id": "backup.nightly", "fire_at": "2026-11-27T09:00:00Z"}).encode()
    p = NasProvider(ProviderSettings("nas", opts, "http://127.0.0.1:8787", Path(base), {"CRONPLAN_NAS_TOKEN": "x"}))
    print(p.verify(HttpRequest("POST", "/api/cron/fire", {"authorization": "Bearer " + token}, body)).job_id)
    """
)


@pytest.mark.timeout(120)
def test_cold_processes_share_one_fetch(server: NasTestServer, tmp_path: Path) -> None:
    from tests.fixtures_nas import nas_options

    opts = json.dumps(nas_options(server))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COLD_VERIFY, opts, server.mint(JOB, FIRE_AT), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == JOB
    assert server.count("jwks_fetches") == 1


@pytest.mark.timeout(60)
def test_concurrent_cold_verifies_fetch_once(server: NasTestServer, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    p = NasProvider(nas_settings(server, tmp_path))
    tokens = [server.mint(JOB, FIRE_AT, alg="RS256" if i % 2 else "EdDSA") for i in range(32)]
    with ThreadPoolExecutor(16) as pool:
        calls = list(pool.map(lambda t: p.verify(request(t)), tokens))
    assert all(c.job_id == JOB for c in calls)
    assert server.count("jwks_fetches") == 1


LEAN_IMPORTS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from cronplan.model import HttpRequest
    from cronplan.provider import ProviderSettings
    import cronplan_nas
    assert "httpx" not in sys.modules and "jwt" not in sys.modules, "heavy import at package import"
    opts, token, base = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    p = cronplan_nas.NasProvider(ProviderSettings("nas", opts, "http://127.0.0.1:8787", Path(base), {}))
    body = json.dumps({"job_id": "backup.nightly", "fire_at": "2026-11-27T09:00:00Z"}).encode()
    p.verify(HttpRequest("POST", "/api/cron/fire", {"authorization": "Bearer " + token}, body))
    print("httpx" in sys.modules)
    """
)


@pytest.mark.timeout(60)
def test_cold_verify_from_disk_cache_does_not_import_httpx(
    server: NasTestServer, tmp_path: Path
) -> None:
    from tests.fixtures_nas import nas_options

    opts = json.dumps(nas_options(server))
    outs = []
    # The first fills the disk cache (importing httpx to fetch the keys); the second must not need it.
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", LEAN_IMPORTS, opts, server.mint(JOB, FIRE_AT), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout.strip())
    assert outs == ["True", "False"]
