"""The ``providers.temporal`` section of cronplan.yaml, read and checked without touching the network."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "cronplan"
DEFAULT_SECRET_ENV = "CRONPLAN_WEBHOOK_SECRET"
#: How long the worker keeps retrying one fire delivery before giving up (the misfire backstop,
#: ``cronplan fire --overdue``, covers what is dropped after that).
DEFAULT_DELIVERY_SECONDS = 3600.0
#: How long cancel() waits for a worker to act on a cancellation before terminating the workflow.
DEFAULT_CANCEL_WAIT_SECONDS = 2.0

WORKFLOW_TYPE = "CronplanArm"
ACTIVITY_NAME = "cronplan_deliver_fire"
WORKFLOW_ID_PREFIX = "cronplan-arm:"
FIRE_PATH = "/api/cron/fire"

_KNOWN_KEYS = {
    "address",
    "namespace",
    "task_queue",
    "secret_env",
    "delivery_seconds",
    "cancel_wait_seconds",
}


@dataclass(frozen=True)
class TemporalSettings:
    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_TASK_QUEUE
    secret_env: str = DEFAULT_SECRET_ENV
    delivery_seconds: float = DEFAULT_DELIVERY_SECONDS
    cancel_wait_seconds: float = DEFAULT_CANCEL_WAIT_SECONDS

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TemporalSettings:
        """Read the section leniently; ``problems()`` says what is wrong (check() reports it)."""

        def text(key: str, default: str) -> str:
            value = options.get(key)
            return default if value is None else str(value).strip()

        def number(key: str, default: float) -> float:
            value = options.get(key)
            if value is None:
                return default
            try:
                return float(value)
            except (TypeError, ValueError):
                return float("nan")

        return cls(
            address=text("address", DEFAULT_ADDRESS),
            namespace=text("namespace", DEFAULT_NAMESPACE),
            task_queue=text("task_queue", DEFAULT_TASK_QUEUE),
            secret_env=text("secret_env", DEFAULT_SECRET_ENV),
            delivery_seconds=number("delivery_seconds", DEFAULT_DELIVERY_SECONDS),
            cancel_wait_seconds=number("cancel_wait_seconds", DEFAULT_CANCEL_WAIT_SECONDS),
        )

    def problems(self, options: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
        """Everything wrong with this configuration, without network access."""
        found: list[str] = []
        unknown = sorted(set(options) - _KNOWN_KEYS)
        if unknown:
            found.append(
                f"providers.temporal: unknown key(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_KNOWN_KEYS))})"
            )
        address_problem = check_address(self.address)
        if address_problem:
            found.append(f"providers.temporal.address: {address_problem}")
        if not self.namespace:
            found.append("providers.temporal.namespace is empty")
        if not self.task_queue:
            found.append("providers.temporal.task_queue is empty")
        if not (self.delivery_seconds > 0):
            found.append("providers.temporal.delivery_seconds must be a positive number")
        if not (self.cancel_wait_seconds >= 0):
            found.append("providers.temporal.cancel_wait_seconds must be a number >= 0")
        if not self.secret_env:
            found.append("providers.temporal.secret_env is empty")
        else:
            _, secret_problem = read_secret(environ, self.secret_env)
            if secret_problem:
                found.append(
                    f"${self.secret_env} (providers.temporal.secret_env): {secret_problem}"
                )
        return found


def check_address(address: str) -> str | None:
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        return f"{address!r} is not HOST:PORT"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"{address!r} has no valid port"
    return None


def read_secret(environ: Mapping[str, str], name: str) -> tuple[str, str | None]:
    """The webhook secret held by ``$name`` (whitespace around it dropped: a mounted secret file ends in
    a newline), and why it is unusable (None when it is usable). The problem never echoes the value."""
    value = environ.get(name, "").strip(" \t\r\n")
    problem = check_secret(value)
    return ("", problem) if problem else (value, None)


def check_secret(value: str | None) -> str | None:
    """Why a Standard Webhooks secret (``whsec_`` + base64) is unusable, else None. Never echoes it."""
    if not value:
        return "is not set (it holds the webhook signing secret, whsec_...)"
    if not all("!" <= c <= "~" for c in value):
        return (
            "holds inner whitespace, control or non-ASCII characters; the secret is whsec_ + "
            "base64 (check the secret it was read from)"
        )
    raw = value[len("whsec_") :] if value.startswith("whsec_") else value
    try:
        decoded = base64.b64decode(raw + "==", validate=False)
    except (binascii.Error, ValueError):
        return "is not a whsec_ secret (base64 after the whsec_ prefix)"
    if len(decoded) < 16:
        return "is too short: use at least 16 random bytes (whsec_ + base64)"
    return None


def workflow_id(dedup_key: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{dedup_key}"


def job_prefix(job_id: str) -> str:
    """Every workflow id of one job starts with this (job ids never contain ``:``)."""
    return f"{WORKFLOW_ID_PREFIX}{job_id}:"
