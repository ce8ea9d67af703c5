"""`signage player run` and `signage player pair`: the agent on a screen PC, and pairing a PC that has no config
with a code, mounted by signage_cli. Imports only the player and the kernel."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_CONFIG = Path("var/player/config.json")
ConfigOption = Annotated[Path, typer.Option(
    "--config", help="The player config file: from `signage player register`, or written here by pairing.")]
ServerUrl = Annotated[str | None, typer.Option(
    "--server-url", help="The server (https://...) to pair with when there is no config file yet: the screen "
                         "shows a code to type on the screen's page.")]
Headless = Annotated[bool | None, typer.Option(
    "--headless/--display", help="Dummy video and audio outputs (default: as the config file says; the display "
                                 "while pairing).")]
PlayerDataDir = Annotated[str | None, typer.Option(
    "--player-data-dir", help="The player's data directory, written in the config made by pairing "
                              "(default var/player).")]
BrokerHost = Annotated[str | None, typer.Option(
    help="Pairing: the broker's address as this PC reaches it (default: as the server says; a loopback address "
         "becomes the server's host).")]
BrokerPort = Annotated[int | None, typer.Option(min=1, max=65535, help="Pairing: the broker's port (default: as "
                                                                       "the server says).")]
TlsCa = Annotated[str | None, typer.Option(help="Pairing: the CA file on this PC, for the broker's TLS listener.")]


def run(
    config: ConfigOption = DEFAULT_CONFIG,
    headless: Headless = None,
    server_url: ServerUrl = None,
    player_data_dir: PlayerDataDir = None,
    broker_host: BrokerHost = None,
    broker_port: BrokerPort = None,
    tls_ca: TlsCa = None,
) -> None:
    """Run the player agent: follow the signed plan with libVLC, keep going offline, send proof-of-play. With no
    config file and --server-url: pair with a code first."""
    from player.agent import PlayerAgent
    from player.playback import VlcPlayback
    from signage.clock import SystemClock
    from signage.player_config import PlayerConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not config.exists() and server_url is not None:
        settings = _paired(config, server_url, bool(headless), player_data_dir,
                           {"broker_host": broker_host, "broker_port": broker_port, "broker_tls_ca": tls_ca})
        if settings is None:
            return
    else:
        try:
            settings = PlayerConfig.load(config)
        except ValueError as exc:
            typer.echo(f"error: {exc}, or pair this PC with a code: --server-url https://SERVER", err=True)
            raise typer.Exit(2) from None
    quiet = settings.headless if headless is None else headless
    clock = SystemClock()
    agent = PlayerAgent(settings, clock, lambda post: VlcPlayback(post, clock=clock, headless=quiet))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stop())
    agent.run()


def pair(
    server_url: Annotated[str, typer.Option("--server-url", help="The server (https://...) to pair with.")],
    config: ConfigOption = DEFAULT_CONFIG,
    headless: Headless = None,
    player_data_dir: PlayerDataDir = None,
    broker_host: BrokerHost = None,
    broker_port: BrokerPort = None,
    tls_ca: TlsCa = None,
) -> None:
    """Pair this PC with a code: the screen shows it (and it is printed), staff type it on the screen's page,
    and the player's config is written (mode 0600). Then `signage player run --config FILE`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if _paired(config, server_url, bool(headless), player_data_dir,
               {"broker_host": broker_host, "broker_port": broker_port, "broker_tls_ca": tls_ca}) is None:
        raise typer.Exit(1)


def _paired(config: Path, server_url: str, headless: bool, player_data_dir: str | None, broker: dict):
    """The config pairing fetched and wrote to `config`; None when stopped first (Ctrl-C, SIGTERM)."""
    from player.pairing import PairingFailed, pair_and_keep
    from player.playback import VlcPlayback
    from signage.clock import SystemClock

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    playback = VlcPlayback(lambda _event: None, clock=SystemClock(), headless=headless)
    try:
        return pair_and_keep(server_url, config, playback, stopping, headless=headless, data_dir=player_data_dir,
                             broker=broker, say=lambda line: print(line, flush=True))
    except PairingFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        playback.close()
