"""Lingtan shared kernel: settings, quantities, readings, database, rollups, CLI, demo."""

__version__ = "0.1.0"
