"""One way to page and count every list of the API: `?limit=&offset=`, answered as a `Page`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_LIMIT = 500


class PageParams(BaseModel):
    limit: int = 50
    offset: int = 0


async def page_params(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
                      offset: Annotated[int, Query(ge=0, le=10**9, description="items to skip")] = 0) -> PageParams:
    """`async def`: it reads the query string only, and a plain `def` would cost a hop to the threadpool."""
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(session: Session, query: Select, params: PageParams, to_item: Callable[[object], T]) -> Page[T]:
    """`query` selects ORM rows in a stable order; the total counts the same rows without paging."""
    rows = session.scalars(query.limit(params.limit).offset(params.offset)).all()
    if 0 < len(rows) < params.limit or (not rows and params.offset == 0):
        total = params.offset + len(rows)  # the page holds the last row: no count needed
    else:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    return Page(items=[to_item(row) for row in rows], total=total, limit=params.limit, offset=params.offset)
