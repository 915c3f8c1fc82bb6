"""Make a stored list equal a wanted one, keeping the rows that did not change (their ids, and who
entered them when): what importing a site file again does to purchases, overrides and activity
data, so that importing the same file twice changes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

W = TypeVar("W")


def diff(stored: Iterable[Any], wanted: Sequence[W], key: Callable[[Any], Hashable]
         ) -> tuple[list[int], list[W]]:
    """(ids of stored rows to delete, wanted items to insert). ``stored`` rows have an ``id``;
    ``key`` gives what makes a row and an item the same (their content, not their id)."""
    left = Counter(key(w) for w in wanted)
    remove = []
    for row in stored:
        if left[key(row)] > 0:
            left[key(row)] -= 1
        else:
            remove.append(row.id)
    add = []
    for w in wanted:
        if left[key(w)] > 0:
            left[key(w)] -= 1
            add.append(w)
    return remove, add
