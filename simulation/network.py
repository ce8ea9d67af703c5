"""The broker of a simulation: what Mosquitto does for the players and the server, without sockets.

It keeps what the real broker keeps: the newest retained plan of each player (sent again on every connect),
the QoS 1 messages of a persistent session while its player is away, and the players' messages to the server
while the server is down (the server's session is persistent too). When the broker itself is down nobody is
connected, and what it kept survives (Mosquitto persists it).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from signage.protocol import canonical_json, player_of_topic, player_topic


class SimulatedBroker:
    def __init__(self, deliver: Callable[[str, str, bytes], None]) -> None:
        """`deliver(player_id, topic, payload)` hands a message to a connected player's agent."""
        self._deliver = deliver
        self.up = True
        self.retained: dict[str, bytes] = {}
        self.sessions: dict[str, deque[tuple[str, bytes]]] = defaultdict(deque)
        self.connected: set[str] = set()
        self.to_server: deque[tuple[str, str, bytes]] = deque()  # (kind, player id, payload)
        self.published = 0

    # -- from the server ---------------------------------------------------------------------------------

    def publish_to_player(self, player_id: str, kind: str, payload: bytes, *, retain: bool = False) -> bool:
        """False when the broker is down (the server's publish fails; it sends again after reconnecting)."""
        if not self.up:
            return False
        topic = player_topic(player_id, kind)
        if retain:
            self.retained[topic] = payload
        if player_id in self.connected:
            self._deliver(player_id, topic, payload)
        elif not retain:
            self.sessions[player_id].append((topic, payload))
        return True

    # -- from the players ----------------------------------------------------------------------------------

    def publish_from_player(self, player_id: str, topic: str, payload: bytes) -> None:
        located = player_of_topic(topic)
        if located is None or located[0] != player_id or player_id not in self.connected:
            return  # the ACL, or a publish on a dropped connection: lost as on the wire
        self.to_server.append((located[1], player_id, payload))
        self.published += 1

    def connect(self, player_id: str) -> None:
        """A player's (re)connection: its retained plan, then what its session kept."""
        self.connected.add(player_id)
        plan_topic = player_topic(player_id, "plan")
        if plan_topic in self.retained:
            self._deliver(player_id, plan_topic, self.retained[plan_topic])
        queued = self.sessions.pop(player_id, deque())
        while queued:
            self._deliver(player_id, *queued.popleft())

    def drop(self, player_id: str, *, unclean: bool) -> None:
        """A player's connection ends; an unclean end publishes its Last Will (offline) to the server."""
        if player_id not in self.connected:
            return
        self.connected.discard(player_id)
        if unclean and self.up:
            self.to_server.append(("status", player_id, canonical_json({"player_id": player_id,
                                                                         "state": "offline"})))


class PlayerLink:
    """What a simulated player's agent has in place of its paho client."""

    def __init__(self, broker: SimulatedBroker, player_id: str) -> None:
        self.broker = broker
        self.player_id = player_id

    def is_connected(self) -> bool:
        return self.player_id in self.broker.connected

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, properties: Any = None) -> None:
        self.broker.publish_from_player(self.player_id, topic, payload)
