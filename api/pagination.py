"""One page of a list: ``limit``/``offset`` in, ``{items, total, limit, offset}`` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

T = TypeVar("T")

MAX_LIMIT = 1000
# Large enough for any real list, small enough for a PostgreSQL bigint OFFSET.
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page", examples=[100])] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip", examples=[0])] = 0,
) -> PageParams:
    return PageParams(limit, offset)


Paging = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="items in the whole list, not just this page")
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[T], page: PageParams) -> Page[T]:
        """A page cut from the whole list: for lists that are small by nature (sites, a site's
        meters, gateways, factors), where counting and slicing in Python costs nothing."""
        return cls(items=list(items[page.offset:page.offset + page.limit]), total=len(items),
                   limit=page.limit, offset=page.offset)
