"""A text alert read aloud, end to end with real parts: Mosquitto, the server (web API, MQTT bridge, espeak-ng and
ffmpeg), ward A's display and loudspeaker as player agents with real libVLC (dummy outputs), proof-of-play back in
the database, and sox on the file the loudspeaker played."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from campaigns.kinds import ScreenKind
from campaigns.models import Alert, Screen
from media.store import MediaStore
from scheduler.models import AlertDelivery
from scheduler.players import register_player
from signage.db import transaction
from signage.protocol import text_sha256
from signage.signing import Signer
from tests import test_player_e2e as e2e
from tests.test_alert_e2e import of, ward_staff  # noqa: F401 (a fixture)
from tests.test_player_e2e import PLAYERS, media_table, publish_plan, wait_for_records
from tests.test_speech import assert_spoken

stack = e2e.stack
database_url = e2e.database_url

WARD_A_DISPLAY = PLAYERS[0]
WARD_A_SPEAKER = "e2e-a-loa"


@pytest.fixture
def speaker(stack, clock, tmp_path):
    """Ward A's loudspeaker at its office, with its player registered (and let into the broker)."""
    with transaction(stack.database.sessions) as session:
        session.add(Screen(id=WARD_A_SPEAKER, site_id="e2e-a", name="Loa A", kind=ScreenKind.speaker))
        session.flush()
        config = register_player(session, WARD_A_SPEAKER, stack.settings, Signer.load_or_create(
            stack.settings.data_dir), stack.url, clock.now())
    config = config.model_copy(update={"data_dir": str(tmp_path / WARD_A_SPEAKER), "headless": True})
    config.write(tmp_path / f"{WARD_A_SPEAKER}.json")
    stack.configs[WARD_A_SPEAKER] = tmp_path / f"{WARD_A_SPEAKER}.json"
    stack.broker.reload()
    return tmp_path / WARD_A_SPEAKER


def test_an_urgent_text_alert_to_a_ward_is_read_aloud_on_its_loudspeaker_and_shown_on_its_display(
        stack, ward_staff, speaker):  # noqa: F811 (the fixture imported)
    database, bridge = stack.database, stack.bridge
    loop = media_table(database)["loop.png"]
    for player_id in (WARD_A_DISPLAY, WARD_A_SPEAKER):
        publish_plan(database, bridge, player_id, [], loop)
    agents = {player_id: stack.start_agent(player_id) for player_id in (WARD_A_DISPLAY, WARD_A_SPEAKER)}
    for agent in agents.values():
        agent.wait_for(" taken: ", timeout=60)

    text = "Đường trước trụ sở ngập sâu: xin đi đường khác"
    answer = ward_staff["a"].post("/api/v1/alerts", json={
        "title": "Ngập úng", "text": text, "severity": "urgent", "kind": "text",
        "expires_at": (datetime.now(UTC) + timedelta(seconds=15)).isoformat(),
        "targets": {"organisations": ["e2e-ward-a"]}})
    assert answer.status_code == 201, answer.text
    alert = answer.json()
    spoken = alert["spoken"]
    assert spoken and (alert["phase"], alert["screens"]) == ("active", 2)  # the display and the loudspeaker

    rows = wait_for_records(bridge, database, lambda rows: of(rows, WARD_A_SPEAKER, "alert", "completed")
                            and of(rows, WARD_A_DISPLAY, "alert", "completed"), timeout=120)
    # The loudspeaker played the spoken file, looped, until the alert's expiry: a completed play of it.
    [heard] = of(rows, WARD_A_SPEAKER, "alert", "completed")
    assert (heard.spot_id, heard.media) == (alert["id"], spoken)
    assert heard.ended_at >= datetime.fromisoformat(alert["expires_at"])
    # libVLC played the file through (an audio item ends well only when its playing time moved: real decoding).
    agents[WARD_A_SPEAKER].wait_for(f"alert {alert['id']}'s clip {spoken} played to its end", timeout=30)
    assert "cannot play" not in "".join(agents[WARD_A_SPEAKER].lines)
    # The display showed the text, as before.
    [shown] = of(rows, WARD_A_DISPLAY, "alert", "completed")
    assert shown.media == text_sha256(text)
    with database.sessions() as session:
        deliveries = {d.screen_id: d.outcome for d in session.scalars(select(AlertDelivery))}
        assert session.get(Alert, alert["id"]).spoken_sha256 == spoken
    assert deliveries == {WARD_A_DISPLAY: "completed", WARD_A_SPEAKER: "completed"}
    # What the loudspeaker played is the server's spoken file, byte for byte: a voice longer than a second.
    [cached] = [path for path in speaker.rglob(spoken) if path.is_file()]
    assert cached.read_bytes() == MediaStore(stack.settings.media_dir).path_for(spoken).read_bytes()
    assert_spoken(cached, at_least_s=1.0)
