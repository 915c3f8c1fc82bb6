"""Lingtan shared kernel: settings, quantities, readings, schema, CLI."""

__version__ = "0.1.0"
