"""`signage broker` and `signage player register|revoke`, mounted by signage_cli (which puts them in the `player`
group beside the player's own `run`).

This module is imported by the `signage` command on screen PCs too, so it imports server code only inside
the commands (after scheduler.cli.server_modules(), which says what is missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli import server_modules
from signage.console import err, fail, settings

ScreenArg = Annotated[str, typer.Argument(help="The screen's id, as in the fleet file; it is the player's id.")]


def broker(
    tls_cert: Annotated[Path | None, typer.Option(help="Certificate (PEM) for a TLS listener.", dir_okay=False,
                                                  envvar="SIGNAGE_BROKER_TLS_CERT")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).", dir_okay=False,
                                                 envvar="SIGNAGE_BROKER_TLS_KEY")] = None,
    tls_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the TLS listener.",
                                          envvar="SIGNAGE_BROKER_TLS_PORT")] = 8883,
    watch_interval: Annotated[float, typer.Option(
        min=0.05, help="Seconds between checks of the player credentials for registrations and revocations."
    )] = 2.0,
) -> None:
    """Run the MQTT broker (Mosquitto) for the players: its files are written from the database, and it is
    restarted if it dies and reloaded when players are registered or revoked. Ctrl-C stops it."""
    import logging
    import signal
    import threading

    database_module = server_modules()
    from scheduler.broker import BrokerFailed, BrokerSupervisor, BrokerTls, broker_dir

    if (tls_cert is None) != (tls_key is None):
        raise fail("--tls-cert and --tls-key go together: give both for a TLS listener, or neither", 2)
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise fail(f"{path} does not exist; give the path of a PEM file", 2)
    tls = BrokerTls(certfile=tls_cert, keyfile=tls_key, port=tls_port) if tls_cert and tls_key else None
    config = settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    database = database_module.open_database(config)
    supervisor = BrokerSupervisor(config, database, tls=tls, watch_interval=watch_interval)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        supervisor.start()
    except BrokerFailed as exc:
        database.dispose()
        raise fail(str(exc)) from None
    try:
        listening = f"{config.broker_host}:{config.broker_port}"
        if tls is not None:
            listening += f" and TLS on port {tls.port}"
        print(f"broker listening on {listening}; files in {broker_dir(config)} (Ctrl-C stops)", flush=True)
        stop.wait()
    finally:
        supervisor.stop()
        database.dispose()


def register(
    screen_id: ScreenArg,
    out: Annotated[Path | None, typer.Option(
        "--out", dir_okay=False, help="Where to write the player's config file (default DATA_DIR/players/ID.json)."
    )] = None,
    server_url: Annotated[str | None, typer.Option(
        help="Where players download media (default http://SIGNAGE_HTTP_HOST:SIGNAGE_HTTP_PORT).")] = None,
    broker_host: Annotated[str | None, typer.Option(
        help="Broker address as the player reaches it (default SIGNAGE_BROKER_HOST).")] = None,
    broker_port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="Broker port as the player reaches it (default SIGNAGE_BROKER_PORT).")] = None,
    tls_ca: Annotated[str | None, typer.Option(
        help="CA file on the player's machine, when it connects to the broker's TLS listener.")] = None,
    player_data_dir: Annotated[str | None, typer.Option(
        "--player-data-dir", help="The player's own data directory on its machine (default var/player; the "
        "systemd unit uses /var/lib/signage-player).")] = None,
    headless: Annotated[bool, typer.Option(
        "--headless/--screen", help="Dummy video and audio outputs (tests, a PC without a display) or the screen.",
    )] = False,
) -> None:
    """Make a player's credentials for a screen (replacing any it had) and write its config file (mode 0600).

    The secret is only in that file: the server keeps hashes."""
    database_module = server_modules()
    from scheduler.broker import SERVER_ACCOUNT
    from scheduler.players import UnknownScreen, register_player
    from signage.clock import SystemClock
    from signage.db import transaction
    from signage.signing import Signer

    if screen_id == SERVER_ACCOUNT:
        raise fail(f"{SERVER_ACCOUNT!r} is the server's own broker account; give the screen another id", 2)
    config = settings()
    target = out or config.data_dir / "players" / f"{screen_id}.json"
    signer = Signer.load_or_create(config.data_dir)
    database = database_module.open_database(config)
    try:
        with transaction(database.sessions) as session:
            player_config = register_player(session, screen_id, config, signer,
                                            server_url or f"http://{config.http_host}:{config.http_port}",
                                            SystemClock().now())
    except UnknownScreen as exc:
        raise fail(f"{exc}: `signage fleet import FILE`", 2) from None
    finally:
        database.dispose()
    changes = {key: value for key, value in (("broker_host", broker_host), ("broker_port", broker_port),
                                             ("broker_tls_ca", tls_ca), ("data_dir", player_data_dir))
               if value is not None}
    changes["headless"] = headless
    player_config = player_config.model_copy(update=changes)
    try:
        player_config.write(target)
    except OSError as exc:
        raise fail(f"the player {screen_id} was registered but its config could not be written to {target} "
                   f"({exc.strerror}); run `signage player register {screen_id} --out FILE` again "
                   "to make new credentials") from None
    print(f"wrote {target}")
    err.print(f"copy it to the screen PC of {screen_id}; it holds the player's secret (the server keeps only a "
              "hash). A running `signage broker` lets the player in within seconds.", highlight=False)


def revoke(screen_id: ScreenArg) -> None:
    """Take a player's access away: a running `signage broker` disconnects it and refuses it within seconds."""
    database_module = server_modules()
    from campaigns.models import Screen
    from scheduler.models import PlayerCredential
    from scheduler.players import revoke_player
    from signage.clock import SystemClock
    from signage.db import transaction

    database = database_module.open_database(settings())
    try:
        with transaction(database.sessions) as session:
            if session.get(Screen, screen_id) is None and session.get(PlayerCredential, screen_id) is None:
                raise fail(f"no screen has the id {screen_id!r}; check it with `signage fleet export`", 2)
            revoked = revoke_player(session, screen_id, SystemClock().now())
    finally:
        database.dispose()
    if revoked:
        print(f"revoked the player {screen_id}")
    else:
        print(f"the player {screen_id} had no access to revoke (never registered, or revoked already)")
