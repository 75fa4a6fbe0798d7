"""The built-in local provider (arms in SQLite) and the timer loop that fires them (docs/architecture.md)."""
