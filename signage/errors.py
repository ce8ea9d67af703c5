"""Errors that tell the user what is wrong and how to fix it.

The domain raises four kinds, and the web layer answers each one way (scheduler/web/problems.py):
`Invalid` (a value breaks a rule: 422), `NotFound` (not within the user's organisation, the same answer as for
what does not exist: 404), `NotAllowed` (this role or person may not: 403), `Conflict` (not in the present
state, or an id already taken: 409). Subclasses may give a more specific name; the web layer knows only these.
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_FIX = "check the id (lists under /api/v1 show what you can reach)"


class Refused(Exception):
    """What is wrong (`problem`) and what to do instead (`fix`); `details` are further facts for the answer
    (e.g. `errors=[...]` or the `campaigns=[...]` in the way)."""

    def __init__(self, problem: str, fix: str, **details: Any) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix
        self.details = details


class Invalid(Refused, ValueError):
    """A value that breaks a rule; `fix` says what to do instead.

    Raised from pydantic validators too: pydantic keeps the exception, so the fix reaches the user.
    """


class NotFound(Refused, LookupError):
    """No such thing within the user's organisation: another unit's objects are not even acknowledged."""

    def __init__(self, kind: str, ref: str, fix: str = NOT_FOUND_FIX) -> None:
        super().__init__(f"there is no {kind} {ref!r} within your organisation", fix)
        self.kind = kind
        self.ref = ref


class NotAllowed(Refused):
    """The user's role, or the user as this person (e.g. the submitter), may not do this."""


class Conflict(Refused):
    """The present state does not allow this now: an id already taken, an object still in use, a campaign
    awaiting approval."""


__all__ = ["NOT_FOUND_FIX", "Conflict", "Invalid", "NotAllowed", "NotFound", "Refused"]
