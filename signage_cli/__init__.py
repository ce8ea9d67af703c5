"""The `signage` command: one Typer app that mounts the commands each package keeps in its own command module
(`scheduler/cli.py`, `scheduler/broker_cli.py`, `scheduler/screen_cli.py`, `scheduler/reports/cli.py`,
`scheduler/rounds_cli.py`, `player/cli.py`, `simulation/cli.py`, `loadtest/cli.py`) and does nothing else;
docs/architecture.md, "The command line", lists where each verb lives.

Every command module imports only Typer, Rich and the kernel (`signage/`) when loaded, and the server's code
inside its commands: the player's install (without the [server] extra) lists every verb and runs `signage player
run`, and any other verb says what it needs (tests/test_boundaries.py runs `signage --help` and a server verb
with the server's packages blocked).
"""

from __future__ import annotations

import typer

from loadtest.cli import loadtest
from player.cli import pair as player_pair
from player.cli import run as player_run
from scheduler.broker_cli import broker, register, revoke
from scheduler.cli import campaign_app, db_app, demo, fleet_app, ingest, plan, server, user_app
from scheduler.reports.cli import report_app
from scheduler.rounds_cli import rounds_app
from scheduler.screen_cli import screen_app
from signage import __version__
from signage.console import out
from simulation.cli import simulate

app = typer.Typer(help="Hà Nội public screens broadcast scheduler.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

# The player's group spans two packages: the server makes a player's credentials, the screen PC runs it.
player_app = typer.Typer(help="Player agents: register a screen's player (credentials and config file), "
                              "revoke it; run it; pair a screen PC with a code.", no_args_is_help=True)
player_app.command("register")(register)
player_app.command("revoke")(revoke)
player_app.command("run")(player_run)
player_app.command("pair")(player_pair)


def version() -> None:
    """Print the software version."""
    out.print(__version__)


# `signage --help` lists the verbs in this order, then the groups.
app.command("broker")(broker)
app.command("loadtest")(loadtest)
app.command("plan")(plan)
app.command("simulate")(simulate)
app.command("server")(server)
app.command("ingest")(ingest)
app.command("demo")(demo)
app.command("version")(version)
app.add_typer(fleet_app, name="fleet")
app.add_typer(campaign_app, name="campaign")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(report_app, name="report")
app.add_typer(rounds_app, name="rounds")
app.add_typer(screen_app, name="screen")
app.add_typer(player_app, name="player")


def main() -> None:
    app()
