"""paho-mqtt 2 clients driven by one asyncio loop, so that a process can hold a thousand MQTT sessions without a
thread for each.

paho's socket callbacks tell the loop which sockets to watch: a readable socket runs `loop_read`, a socket with
packets waiting runs `loop_write` when it can take them, and one timer runs `loop_misc` (keepalives) for every client.
The TCP connection itself is opened on the loop too: paho's own connect blocks, and in a reconnection storm
Mosquitto's listen backlog (100) drops SYNs, which would stall every client of the process for a second or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import paho.mqtt.client as mqtt

MISC_EVERY_S = 1.0


class LoopClient(mqtt.Client):
    """A paho client that takes the TCP socket the loop connected instead of connecting one itself."""

    _connected_socket: socket.socket | None = None

    def _create_socket_connection(self) -> socket.socket:
        # paho 2's one place where it opens its TCP connection (reconnect() calls it); pinned by paho-mqtt<3.
        sock, self._connected_socket = self._connected_socket, None
        if sock is None:
            raise ConnectionError("connect through AsyncioMqtt.open(), which opens the socket on the loop")
        return sock


class AsyncioMqtt:
    """The clients of one asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: list[LoopClient] = []
        self._misc: asyncio.Task | None = None

    def attach(self, client: LoopClient) -> None:
        client.on_socket_open = self._watch
        client.on_socket_close = self._unwatch
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written
        self.clients.append(client)
        if self._misc is None:
            self._misc = self.loop.create_task(self._keepalives())

    async def open(self, client: LoopClient, host: str, port: int, timeout: float) -> None:
        """Connect the TCP socket without blocking the loop, then have paho send CONNECT on it (after
        `connect_async` set what to connect with). Raises OSError or TimeoutError when the broker is not there."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, (host, port)), timeout)
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client._connected_socket = sock
        client.reconnect()

    def close(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    # -- paho's socket callbacks -------------------------------------------------------------------------

    def _watch(self, client: mqtt.Client, userdata, sock) -> None:
        self.loop.add_reader(sock, client.loop_read)

    def _unwatch(self, client: mqtt.Client, userdata, sock) -> None:
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)

    def _want_write(self, client: mqtt.Client, userdata, sock) -> None:
        self.loop.add_writer(sock, client.loop_write)

    def _written(self, client: mqtt.Client, userdata, sock) -> None:
        with contextlib.suppress(ValueError):  # the socket was closed already
            self.loop.remove_writer(sock)

    async def _keepalives(self) -> None:
        while True:
            await asyncio.sleep(MISC_EVERY_S)
            for client in self.clients:
                client.loop_misc()
