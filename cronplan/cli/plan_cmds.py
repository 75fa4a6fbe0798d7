"""Commands: plan_cmds (registered on the root group)."""

from __future__ import annotations
