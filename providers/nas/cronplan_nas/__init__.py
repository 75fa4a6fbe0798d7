"""cronplan provider for the NAS managed scheduler (SPEC §10).

Registered as ``nas`` in the ``cronplan.providers`` entry-point group. Importing this package is cheap:
httpx and pyjwt are imported only when a call or a verification first needs them.
"""

from __future__ import annotations

from cronplan_nas.options import DEFAULT_TOKEN_ENV, NasOptions, parse_options
from cronplan_nas.provider import NasProvider

__all__ = ["DEFAULT_TOKEN_ENV", "NasOptions", "NasProvider", "parse_options"]
__version__ = "0.1.0"
