"""Alembic migrations for the Lingtan schema (run with `lingtan db upgrade`)."""
