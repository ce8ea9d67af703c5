"""Errors that tell the user what is wrong and how to fix it."""

from __future__ import annotations


class Invalid(ValueError):
    """A value that breaks a rule; `fix` says what to do instead.

    Raised from pydantic validators too: pydantic keeps the exception, so the fix reaches the user.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix
