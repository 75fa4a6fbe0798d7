#!/usr/bin/env python3
"""A `runner` for Hermes-style `prompt` jobs: cronplan runs it with the job as JSON on stdin.

cronplan.yaml:

    runner: [python3, prompt_runner.py]     # relative to the config file's directory

A job with neither `command` nor `http` (say `{"id": ..., "prompt": "...", "skills": [...], "model": ...}`)
is handed to this script when it fires: stdin holds the job as applied plus its `fire_at`, and the
environment carries CRONPLAN_JOB_ID and CRONPLAN_FIRE_AT. The exit status is the run's result; the end of
what it prints is kept as the run's output tail.

Set AGENT_COMMAND to the agent's command line (for example `my-agent run`): the prompt is appended as its
last argument, and `--skills`/`--model` are passed when the job names them. Without AGENT_COMMAND the
script only prints what it would run (a dry run), so the example works anywhere.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys


def main() -> int:
    try:
        job = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        print(f"prompt_runner: stdin is not a job as JSON: {exc}", file=sys.stderr)
        return 2
    prompt = job.get("prompt") if isinstance(job, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        job_id = job.get("id") if isinstance(job, dict) else None
        print(f"prompt_runner: job {job_id!r} has no 'prompt' to run", file=sys.stderr)
        return 2

    argv = shlex.split(os.environ.get("AGENT_COMMAND", ""))
    if job.get("skills"):
        argv += ["--skills", ",".join(str(s) for s in job["skills"])]
    if job.get("model"):
        argv += ["--model", str(job["model"])]
    print(f"job {job.get('id')} for {job.get('fire_at')}: {prompt}", flush=True)
    if not os.environ.get("AGENT_COMMAND"):
        print(f"dry run (AGENT_COMMAND is not set); agent arguments: {shlex.join([*argv, prompt])}")
        return 0
    return subprocess.run([*argv, prompt], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
