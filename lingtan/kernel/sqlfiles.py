"""Named SQL: statements long enough to need a name live in ``sql/NAME.sql`` next to the module
that runs them, so they can be read, linted and EXPLAINed as SQL.

Parameters are psycopg's named ``%(name)s`` (or SQLAlchemy's ``:name``), never positional. A
``{fragment}`` is a piece of SQL the caller fills in with ``str.format`` (a table name, a shared
condition); literal braces in a file are doubled.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def sql(package: str, name: str) -> str:
    """The text of ``sql/{name}.sql`` in ``package`` (e.g. ``sql("lingtan.core", "rollup_upsert")``)."""
    return files(package).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
