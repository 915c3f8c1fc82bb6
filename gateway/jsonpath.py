"""The small JSON path subset device mappings use: `$.a.b`, `$.list[0].c`, `$['key with space']`."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]")


class PathError(ValueError):
    pass


def compile_path(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise PathError(f"JSON path {path!r} must start with '$'")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match:
            raise PathError(f"JSON path {path!r}: cannot parse at {path[pos:]!r}")
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        pos = match.end()
    return steps


def extract(document: Any, steps: list[str | int]) -> Any:
    node = document
    for step in steps:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            raise KeyError(step) from None
    return node
