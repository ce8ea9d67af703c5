"""A worker process: one asyncio loop running its share of the simulated players, told what to do over a pipe.

Orders (tuples) and replies:
  ("send", seconds, batch, window) -> ("sending",)      every player sends proof-of-play for `seconds`
  ("drain", timeout)               -> ("drained", n)     stop starting batches; wait until acks cleared the journals
  ("results",)                     -> ("results", dict)  play_ids sent, refused and still unacknowledged
  ("stop",)                        -> ("stopped",)       disconnect cleanly and end
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from multiprocessing.connection import Connection

from loadtest.aio_mqtt import AsyncioMqtt
from loadtest.sim_player import PlayerOptions, Sending, SimPlayer
from loadtest.tally import Tally
from signage.signing import Verifier, public_key_from_text

TICK_S = 1.0
POLL_S = 0.1
STOP_TIMEOUT_S = 10.0


def run_worker(conn: Connection, accounts: list[tuple[str, str]], public_keys: list[str], options: PlayerOptions,
               tally_array, seed: int, connect_spread_s: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle: it stops the workers in order
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    asyncio.run(_work(conn, accounts, public_keys, options, Tally(tally_array), seed, connect_spread_s))


async def _work(conn: Connection, accounts: list[tuple[str, str]], public_keys: list[str], options: PlayerOptions,
                tally: Tally, seed: int, connect_spread_s: float) -> None:
    loop = asyncio.get_running_loop()
    mqtt = AsyncioMqtt(loop)
    verifier = Verifier([public_key_from_text(key) for key in public_keys])
    rng = random.Random(seed)
    players = [SimPlayer(player_id, password, options, mqtt, verifier, tally, rng)
               for player_id, password in accounts]
    for player in players:
        player.start(delay=rng.uniform(0, connect_spread_s))

    orders: asyncio.Queue = asyncio.Queue()

    def take_order() -> None:
        try:
            orders.put_nowait(conn.recv())
        except (EOFError, OSError):  # the run ended without saying so
            loop.remove_reader(conn.fileno())
            orders.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), take_order)
    ticker = loop.create_task(_tick(loop, players))
    try:
        while True:
            order = await orders.get()
            if order[0] == "send":
                _, seconds, batch, window = order
                sending = Sending(until=loop.time() + seconds, batch=batch, window=window)
                for player in players:
                    player.begin_sending(sending)
                conn.send(("sending",))
            elif order[0] == "drain":
                conn.send(("drained", await _drain(players, order[1])))
            elif order[0] == "results":
                conn.send(("results", {"sent": [p for player in players for p in player.sent],
                                       "rejected": [p for player in players for p in player.rejected],
                                       "backlog": [p for player in players for p in player.journal]}))
            elif order[0] == "stop":
                break
    finally:
        ticker.cancel()
        for player in players:
            player.stop()
        await _until(lambda: all(player.client.socket() is None for player in players), STOP_TIMEOUT_S)
        mqtt.close()
    with contextlib.suppress(BrokenPipeError, OSError):  # the run may have gone already
        conn.send(("stopped",))


async def _tick(loop: asyncio.AbstractEventLoop, players: list[SimPlayer]) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        now = loop.time()
        for player in players:
            player.tick(now)


async def _until(condition, timeout: float) -> bool:
    """Poll `condition` on the loop until it holds or `timeout` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def _drain(players: list[SimPlayer], timeout: float) -> int:
    """Stop new batches and wait until every record is acknowledged (resends go out from the tick)."""
    for player in players:
        player.stop_sending()
    await _until(lambda: all(player.backlog() == 0 for player in players), timeout)
    return sum(player.backlog() for player in players)
