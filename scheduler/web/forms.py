"""A browser form's fields for the page routes that read them.

Reading the body is awaited on the event loop, here, and touches no database; the routes that take `FormDep` are
plain `def`s, run on the threadpool with their session. Starlette keeps the form parsed, so the CSRF check
(scheduler/web/auth.py) and the route read it once. Its text fields come out in NFC, as at every boundary
(signage/text.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from signage.text import nfc


async def parsed_form(request: Request) -> FormData:
    """The form, its text fields in NFC (signage/text.py); files as they came."""
    form = await request.form()
    return FormData([(key, nfc(value) if isinstance(value, str) else value) for key, value in form.multi_items()])


FormDep = Annotated[FormData, Depends(parsed_form)]
