"""What every command module shares: the two consoles, `fail` (a message and an exit code), `print_table`, the
settings read once with their error said as a fix, and the `--json` option. Typer and Rich only: the player's
install has them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.segment import Segments
from rich.table import Table

from signage.config import Settings

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """The error printed on stderr; raise what it returns."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def print_table(table: Table, console: Console = out) -> None:
    """A table fitted to the terminal; piped or redirected, at its own full width, so that no id or date is cut
    short to fit the 80 columns Rich assumes when there is no terminal."""
    if console.is_terminal:
        console.print(table)
        return
    options = console.options.update_width(sys.maxsize)
    options = options.update_width(console.measure(table, options=options).maximum)
    console.print(Segments(console.render(table, options)), crop=False)


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the SIGNAGE_ variable at fault
        raise fail(f"bad settings: {exc}\nFix the SIGNAGE_* environment variables or .env.", 2) from None
