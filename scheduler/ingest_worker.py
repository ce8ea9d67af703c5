"""An ingest worker: the MQTT bridge alone, taking its share of proof-of-play and status.

`signage server` ingests too; more workers (`signage ingest --name ingest-2`, one process each) split
the load through the shared subscription, so ingest can use every core of the machine.
"""

from __future__ import annotations

import logging
import socket
import threading

from scheduler.broker import SERVER_ACCOUNT, server_broker_secret
from scheduler.database import open_database
from scheduler.mqtt_bridge import MqttBridge
from signage.clock import SystemClock
from signage.config import Settings
from signage.signing import Signer

log = logging.getLogger("signage.ingest")


def run_ingest_worker(settings: Settings, name: str, stop: threading.Event) -> None:
    """Ingest until `stop` is set. `name` makes the worker's MQTT session its own, and lasting."""
    database = open_database(settings)
    bridge = MqttBridge(settings, database, Signer.load_or_create(settings.data_dir), SystemClock(),
                        username=SERVER_ACCOUNT, password=server_broker_secret(settings),
                        client_id=f"signage-{name}-{socket.gethostname()}")
    bridge.start()
    log.info("ingest worker %s started", name)
    try:
        stop.wait()
    finally:
        bridge.stop()
        database.dispose()
        log.info("ingest worker %s stopped: %s", name, dict(bridge.stats))
