"""`signage player run`: the agent on a screen PC, mounted by signage_cli. Imports only the player and the kernel."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer


def run(
    config: Annotated[Path, typer.Option("--config", help="The player config file from `signage player register`.")],
    headless: Annotated[bool | None, typer.Option(
        "--headless/--display", help="Dummy video and audio outputs (default: as the config file says).")] = None,
) -> None:
    """Run the player agent: follow the signed plan with libVLC, keep going offline, send proof-of-play."""
    from player.agent import PlayerAgent
    from player.playback import VlcPlayback
    from signage.clock import SystemClock
    from signage.player_config import PlayerConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = PlayerConfig.load(config)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    quiet = settings.headless if headless is None else headless
    clock = SystemClock()
    agent = PlayerAgent(settings, clock, lambda post: VlcPlayback(post, clock=clock, headless=quiet))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stop())
    agent.run()
