"""Lingtan: ``kernel`` (readings, units, time, database, settings), ``core`` (the domain and its one
KPI engine) and ``cli`` (the `lingtan` command and the demo, the front door over every app)."""

__version__ = "0.1.0"
