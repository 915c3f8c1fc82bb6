"""Reading a page's rendered component tree in tests: find a component by id, its text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from plotly.utils import PlotlyJSONEncoder


def as_json(node: Any) -> Any:
    """The tree as the browser receives it (figures and components as plain JSON)."""
    return json.loads(json.dumps(node, cls=PlotlyJSONEncoder, ensure_ascii=False))


def walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def by_id(body: Any, component_id: str) -> dict:
    found = [n for n in walk(as_json(body)) if n.get("props", {}).get("id") == component_id]
    assert len(found) == 1, (component_id, len(found))
    return found[0]


def text(node: Any) -> str:
    """Every string under a component, joined."""
    return " ".join(s for n in walk(as_json(node)) for s in ([n["props"]["children"]] if isinstance(
        n.get("props", {}).get("children"), str) else []))
