"""NAS's signing keys (JWKS): cached in memory and in a file shared by cold processes.

A scale-to-zero agent starts a process per fire, so the disk cache is what keeps key fetches rare: keys
are reused until ``ttl`` passes, and any fetch (for a stale cache or an unknown ``kid``) happens at most
once per ``floor`` seconds across every process sharing the file (the time of the last attempt is kept in
the file, and a file lock makes concurrent cold processes wait for one fetch instead of each doing one).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronplan.errors import AuthError, ProviderError

# JWK key types we accept, mapped to the one JWS algorithm each may be used with.
_KTY_ALG = {"RSA": "RS256", "OKP": "EdDSA"}
_MIN_RSA_BITS = 2048
_FORMAT = 1


@dataclass(frozen=True)
class KeySet:
    """Usable verification keys by ``kid``: (algorithm, public key object)."""

    keys: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    fetched_at: float = 0.0  # wall-clock epoch seconds of the fetch that produced them
    last_attempt: float = 0.0  # wall-clock epoch seconds of the last fetch attempt (ok or not)


def keys_from_jwks(doc: Any) -> dict[str, tuple[str, Any]]:
    """Parse a JWKS document into {kid: (alg, key)}, skipping keys that are not usable signing keys."""
    from jwt import PyJWK
    from jwt.exceptions import PyJWKError

    out: dict[str, tuple[str, Any]] = {}
    raw_keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(raw_keys, list):
        return out
    for jwk in raw_keys:
        if not isinstance(jwk, dict):
            continue
        kid, kty = jwk.get("kid"), jwk.get("kty")
        if not isinstance(kid, str) or not kid or kty not in _KTY_ALG:
            continue
        alg = _KTY_ALG[kty]
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
            continue
        if kty == "OKP" and jwk.get("crv") not in ("Ed25519", "Ed448"):
            continue
        if any(k in jwk for k in ("d", "p", "q", "k")):
            continue  # a private or symmetric key published by mistake is never trusted
        try:
            key = PyJWK.from_dict(jwk, algorithm=alg).key
        except (PyJWKError, ValueError, TypeError, KeyError):
            continue
        if kty == "RSA" and getattr(key, "key_size", 0) < _MIN_RSA_BITS:
            continue
        out[kid] = (alg, key)
    return out


class JwksCache:
    """Keys of one ``jwks_url``; ``get(kid)`` returns (alg, key) or raises ``AuthError``."""

    def __init__(
        self,
        jwks_url: str,
        path: Path,
        *,
        ttl: float = 3600.0,
        floor: float = 60.0,
        fetch_timeout: float = 5.0,
        # The wall clock on purpose, not cronplan's --now clock (docs/planning.md, "The clock"):
        # the key set's cache lifetime is real-world time.
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str, float], Any] | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.path = path
        self.ttl = ttl
        self.floor = floor
        self.fetch_timeout = fetch_timeout
        self._clock = clock
        self._fetch = fetch or _http_fetch
        self._lock = threading.Lock()
        self._mem: KeySet | None = None

    def get(self, kid: str) -> tuple[str, Any]:
        with self._lock:
            now = self._clock()
            ks = self._mem
            if ks is None or not self._fresh(ks, now) or kid not in ks.keys:
                # Another process may have refreshed the shared file since we last looked.
                disk = self._read_disk()
                if disk is not None and (ks is None or disk.last_attempt >= ks.last_attempt):
                    ks = self._mem = disk
            if ks is not None and self._fresh(ks, now) and kid in ks.keys:
                return ks.keys[kid]
            if ks is None or self._may_fetch(ks, now):
                with self._file_lock():
                    # Whoever held the lock before us may just have fetched: look again, with the time
                    # taken now (a time from before the wait would make their fetch look like the future).
                    now = self._clock()
                    disk = self._read_disk()
                    if disk is not None and (ks is None or disk.last_attempt >= ks.last_attempt):
                        ks = self._mem = disk
                    if ks is not None and self._fresh(ks, now) and kid in ks.keys:
                        return ks.keys[kid]
                    if ks is None or self._may_fetch(ks, now):
                        ks = self._mem = self._refresh(ks, now)
            if not ks.keys:
                raise ProviderError(
                    f"cannot verify fires: no signing keys from jwks_url {self.jwks_url} yet "
                    "(the last fetch failed; retrying at most once a minute)"
                )
            if kid in ks.keys:
                # Possibly stale: used only when the refetch floor or a failed fetch stops a refresh,
                # so an unreachable JWKS never turns into a fetch per request.
                return ks.keys[kid]
            raise AuthError(f"fire rejected: signing key {kid!r} is not in the NAS JWKS")

    def _fresh(self, ks: KeySet, now: float) -> bool:
        return 0 <= now - ks.fetched_at < self.ttl

    def _may_fetch(self, ks: KeySet, now: float) -> bool:
        # A clock that went backwards must not pin the floor shut until it catches up.
        return not 0 <= now - ks.last_attempt < self.floor

    def _refresh(self, old: KeySet | None, now: float) -> KeySet:
        try:
            doc = self._fetch(self.jwks_url, self.fetch_timeout)
            keys = keys_from_jwks(doc)
        except Exception:  # any fetch failure keeps the old keys and the floor
            doc, keys = None, {}
        if doc is None or not keys:
            failed = KeySet(
                keys=dict(old.keys) if old else {},
                fetched_at=old.fetched_at if old else 0.0,
                last_attempt=now,
            )
            self._write_disk(failed, old_doc=self._read_raw_doc())
            if not failed.keys:
                # Not the caller's fault: serve answers 503 so NAS retries; nothing runs either way.
                raise ProviderError(
                    f"cannot verify fires: could not get signing keys from jwks_url {self.jwks_url}"
                )
            return failed
        fresh = KeySet(keys=keys, fetched_at=now, last_attempt=now)
        self._write_disk(fresh, old_doc=doc)
        return fresh

    # ------------------------------------------------------------------ the shared file

    def _read_raw_doc(self) -> Any:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("jwks_url") != self.jwks_url:
            return None
        return data.get("jwks")

    def _read_disk(self) -> KeySet | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(data, dict)
            or data.get("format") != _FORMAT
            or data.get("jwks_url") != self.jwks_url
        ):
            return None
        fetched_at, last_attempt = data.get("fetched_at"), data.get("last_attempt")
        if not isinstance(fetched_at, (int, float)) or not isinstance(last_attempt, (int, float)):
            return None
        return KeySet(
            keys=keys_from_jwks(data.get("jwks")),
            fetched_at=float(fetched_at),
            last_attempt=float(last_attempt),
        )

    def _write_disk(self, ks: KeySet, *, old_doc: Any) -> None:
        data = {
            "format": _FORMAT,
            "jwks_url": self.jwks_url,
            "fetched_at": ks.fetched_at,
            "last_attempt": ks.last_attempt,
            "jwks": old_doc if old_doc is not None else {"keys": []},
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            # A read-only project still verifies fires; it just loses the cross-process cache.
            with contextlib.suppress(OSError):
                tmp.unlink()

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: the in-process lock still holds
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _http_fetch(url: str, timeout: float) -> Any:
    import httpx

    response = httpx.get(
        url, timeout=timeout, follow_redirects=False, headers={"Accept": "application/json"}
    )
    response.raise_for_status()
    return response.json()
