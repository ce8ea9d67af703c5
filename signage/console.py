"""What every command module shares: the two consoles, `fail` (a message and an exit code), the settings read
once with their error said as a fix, and the `--json` option. Typer and Rich only: the player's install has them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from signage.config import Settings

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """The error printed on stderr; raise what it returns."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the SIGNAGE_ variable at fault
        raise fail(f"bad settings: {exc}\nFix the SIGNAGE_* environment variables or .env.", 2) from None
