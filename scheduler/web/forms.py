"""A browser form's fields for the page routes that read them.

Reading the body is awaited on the event loop, here, and touches no database; the routes that take `FormDep` are
plain `def`s, run on the threadpool with their session. Starlette keeps the form parsed, so the CSRF check
(scheduler/web/auth.py) and the route read it once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData


async def parsed_form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(parsed_form)]
