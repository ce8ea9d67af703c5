"""(being written) JSON API and web pages: see issue 6."""

from __future__ import annotations

from fastapi import APIRouter

api = APIRouter(prefix="/api/v1")
pages = APIRouter(include_in_schema=False)
