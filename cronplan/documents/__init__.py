"""Documents: reading JSON and YAML with positions, schema errors, the JSON Schemas, the jobs file and
cronplan.yaml loaders, and the importers (docs/architecture.md)."""
