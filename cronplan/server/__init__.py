"""``cronplan serve``: the fire service, the ASGI app (fire, healthz, status page, metrics), its guards,
and ``serve()`` (docs/architecture.md)."""
