"""The kernel: readings, quantities and units, the time grid and clock, the database, settings and
logging. It imports nothing else of the project (docs/architecture.md)."""
