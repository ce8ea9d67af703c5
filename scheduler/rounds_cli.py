"""`signage rounds import FILE` and `signage rounds export`: reporting rounds from and to the `signage.rounds/1`
file (campaigns/round_file.py, docs/files.md); mounted by signage_cli.

At the top this module imports Typer and the kernel only (the player's install lists every verb); the server's code
is imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from signage.console import JsonOpt, err, settings

rounds_app = typer.Typer(help="Reporting rounds: import and export the rounds file (series, forms, deadlines).",
                         no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="The YAML file.", dir_okay=False)]


@rounds_app.command("import")
def rounds_import(file: FileArg, as_json: JsonOpt = False) -> None:
    """Create or update report series, their forms and rounds from a signage.rounds/1 file (all or nothing)."""
    from scheduler.cli import run_import, server_modules

    server_modules()
    from campaigns.round_file import import_rounds
    from signage.clock import SystemClock

    run_import(lambda session: import_rounds(session, file, SystemClock()), as_json)


@rounds_app.command("export")
def rounds_export(
    output: Annotated[Path | None, typer.Option("--out", help="Write here instead of standard output.")] = None,
) -> None:
    """Write every report series, its form and rounds as a signage.rounds/1 file that imports back the same."""
    from scheduler.cli import server_modules, server_session

    server_modules()
    from campaigns.round_file import export_rounds

    timezone = settings().timezone
    with server_session() as session:
        text = export_rounds(session, timezone)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
