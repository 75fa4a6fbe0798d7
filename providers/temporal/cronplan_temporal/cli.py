"""``cronplan-temporal worker [--config PATH]``: run the arm workflows and the fire deliveries.

Reads ``providers.temporal`` from cronplan.yaml (the same lookup as ``cronplan``: ``--config``, else
``$CRONPLAN_CONFIG``, else ``./cronplan.yaml``) and the webhook secret from the environment variable it
names. SIGTERM or SIGINT stops it cleanly: it stops polling, lets running deliveries finish (bounded), and
exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta

from cronplan_temporal.settings import TemporalSettings, read_secret

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 64
SHUTDOWN_GRACE = timedelta(seconds=10)


class WorkerError(Exception):
    pass


def load_settings(
    config_path: str | None, environ: Mapping[str, str]
) -> tuple[TemporalSettings, str]:
    """The provider settings and the webhook secret, or ``WorkerError`` saying what is wrong."""
    from cronplan.documents.config import load_config
    from cronplan.errors import CronplanError

    try:
        config = load_config(config_path, environ)
    except CronplanError as exc:
        raise WorkerError(str(exc)) from None
    options = dict(config.provider_options("temporal"))
    settings = TemporalSettings.from_options(options)
    problems = settings.problems(options, environ)
    if problems:
        raise WorkerError("; ".join(problems))
    secret, _ = read_secret(environ, settings.secret_env)
    return settings, secret


async def serve(settings: TemporalSettings, secret: str, stop: asyncio.Event) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from cronplan_temporal.activities import FireDelivery
    from cronplan_temporal.workflow import ArmWorkflow

    try:
        client = await Client.connect(
            settings.address,
            namespace=settings.namespace,
            connect_timeout=timedelta(seconds=10),
        )
    except Exception as exc:  # the SDK's connection errors come in several types
        raise WorkerError(
            f"cannot connect to Temporal at {settings.address} (namespace {settings.namespace}): {exc}"
        ) from None
    delivery = FireDelivery(secret)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[ArmWorkflow],
        activities=[delivery.deliver],
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )
    print(
        f"cronplan-temporal worker: serving task queue {settings.task_queue!r} on {settings.address} "
        f"(namespace {settings.namespace})",
        file=sys.stderr,
        flush=True,
    )
    async with worker:
        await stop.wait()
    print("cronplan-temporal worker: stopped", file=sys.stderr, flush=True)


class _OneLineFormatter(logging.Formatter):
    """SDK log records (a failed delivery attempt, say) as one line each: the error, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"cronplan-temporal worker: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]}"
        return text


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


async def _main_async(settings: TemporalSettings, secret: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, secret, stop)


def main(argv: Sequence[str] | None = None) -> None:
    code = run(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's native threads may still drop Python objects while the interpreter finalizes, which
    # aborts the process (exit 134) after a perfectly clean shutdown. Everything is flushed and closed
    # by now, so leave without finalizing.
    os._exit(code)


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cronplan-temporal", description="The Temporal side of cronplan's temporal provider."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    worker = sub.add_parser(
        "worker", help="run the arm workflows and deliver fires (stop with SIGTERM)"
    )
    worker.add_argument("--config", metavar="PATH", default=None, help="cronplan.yaml to read")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    if args.command != "worker":
        parser.print_usage(sys.stderr)
        return EXIT_USAGE
    try:
        settings, secret = load_settings(args.config, os.environ)
        _configure_logging()
        asyncio.run(_main_async(settings, secret))
    except WorkerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return EXIT_OK


if __name__ == "__main__":
    main()
