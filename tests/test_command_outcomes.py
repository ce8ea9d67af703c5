"""Remote actions without a broker or a player: what a player's statuses report of the commands it received
(player/commands.py), what the server notes of them at ingest and how it shows each action's result
(scheduler/screen_actions.py), and the refusals and waiting of the API and the screen page. The end-to-end runs with
Mosquitto and real players are tests/test_screen_actions.py."""

import json
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from campaigns.fleet_file import import_fleet
from player.commands import OUTCOME_KEPT_AT_LEAST, CommandOutcomes
from player.status import status_message
from scheduler.ingest import ingest_status
from scheduler.models import ScreenCommand
from scheduler.players import register_player
from scheduler.screen_actions import result_of
from signage.db import transaction
from signage.protocol import MAX_COMMAND_OUTCOMES, Command, Status
from signage.signing import Signer
from tests.conftest import FLEET_FILE, sign_in

PLAYER, OTHER = "hn-nb-t2-001", "hn-nb-t2-002"


def command(clock, ttl=timedelta(minutes=10), player_id=PLAYER) -> Command:
    now = clock.now()
    return Command(command_id=str(uuid.uuid4()), player_id=player_id, name="screenshot", issued_at=now,
                   expires_at=now + ttl, sequence=1)


def test_an_outcome_is_reported_until_its_command_expires_and_at_least_a_few_minutes(clock):
    outcomes = CommandOutcomes()
    long, short = command(clock, ttl=timedelta(minutes=10)), command(clock, ttl=timedelta(seconds=5))
    outcomes.done(long, clock.now())
    outcomes.refused(short, "nothing to take a picture of", clock.now())
    assert [(o.command_id, o.outcome, o.reason) for o in outcomes.current(clock.now())] == [
        (long.command_id, "done", None), (short.command_id, "refused", "nothing to take a picture of")]
    clock.advance(OUTCOME_KEPT_AT_LEAST + timedelta(seconds=1))
    assert [o.command_id for o in outcomes.current(clock.now())] == [long.command_id]
    clock.advance(timedelta(minutes=10))
    assert outcomes.current(clock.now()) == []
    # An alert's start and end are acknowledged in its proof-of-play, not here.
    outcomes.done(long.model_copy(update={"name": "alert_stop"}), clock.now())
    assert outcomes.current(clock.now()) == []


def test_only_the_newest_outcomes_are_kept_and_the_status_leaves_the_field_out_while_empty(clock):
    outcomes = CommandOutcomes()
    commands = [command(clock) for _ in range(MAX_COMMAND_OUTCOMES + 5)]
    for each in commands:
        outcomes.done(each, clock.now())
    reported = outcomes.current(clock.now())
    assert [o.command_id for o in reported] == [c.command_id for c in commands[5:]]
    with_outcomes = json.loads(status_message(Status(player_id=PLAYER, state="online", commands=reported)))
    assert len(with_outcomes["commands"]) == MAX_COMMAND_OUTCOMES
    assert "commands" not in json.loads(status_message(Status(player_id=PLAYER, state="online")))


def test_ingest_notes_the_first_outcome_of_a_screens_own_commands(database, settings, clock):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        mine, theirs = (ScreenCommand(command_id=str(uuid.uuid4()), screen_id=screen, action="screenshot",
                                      requested_by="phula-staff", requested_at=clock.now(), sent_at=clock.now(),
                                      expires_at=clock.now() + timedelta(minutes=10)) for screen in (PLAYER, OTHER))
        session.add_all([mine, theirs])
        mine_id, theirs_id = mine.command_id, theirs.command_id
    outcomes = CommandOutcomes()
    for command_id, player in ((mine_id, PLAYER), (theirs_id, OTHER)):
        outcomes.refused(Command(command_id=command_id, player_id=player, name="screenshot", issued_at=clock.now(),
                                 expires_at=clock.now() + timedelta(minutes=10)), "blank screen", clock.now())
    # PLAYER names its own command and another screen's: only its own is noted.
    status = Status(player_id=PLAYER, state="online", commands=outcomes.current(clock.now()))
    with transaction(database.sessions) as session:
        assert ingest_status(session, PLAYER, status_message(status), clock.now())
    clock.advance(timedelta(seconds=30))
    later = CommandOutcomes()
    later.done(Command(command_id=mine_id, player_id=PLAYER, name="screenshot", issued_at=clock.now(),
                       expires_at=clock.now() + timedelta(minutes=10)), clock.now())
    with transaction(database.sessions) as session:
        assert ingest_status(session, PLAYER, status_message(Status(
            player_id=PLAYER, state="online", commands=later.current(clock.now()))), clock.now())
    with database.sessions() as session:
        mine, theirs = session.get(ScreenCommand, mine_id), session.get(ScreenCommand, theirs_id)
        assert (mine.outcome, mine.reason) == ("refused", "blank screen")  # the first outcome counts
        assert theirs.outcome is None
        assert result_of(mine, True, clock.now()).state == "refused"
        assert result_of(theirs, False, clock.now()).state == "waiting"
        assert result_of(theirs, True, clock.now()).state == "sent"
        assert result_of(theirs, True, clock.now() + timedelta(minutes=11)).state == "expired"


def test_a_screen_without_a_registered_player_refuses_actions_saying_how_to_register_one(app, web, api, database):
    answer = api("phula-staff").post("/api/v1/screens/hn-hadong-phula-001/actions/reload")
    assert answer.status_code == 409 and answer.headers["content-type"] == "application/problem+json"
    assert "signage player register hn-hadong-phula-001" in answer.json()["detail"]
    csrf = sign_in(web, "phula-staff")
    asked = web.post("/screens/hn-hadong-phula-001/actions/reload", data={"csrf_token": csrf},
                     follow_redirects=False)
    assert asked.status_code == 303 and "refused=no_player" in asked.headers["location"]
    page = web.get(asked.headers["location"]).text
    assert 'id="action-refused"' in page and "chưa có trình phát được đăng ký" in page
    assert 'id="action-none"' in page  # nothing was stored
    with database.sessions() as session:
        assert session.scalars(select(ScreenCommand)).all() == []


def test_without_a_broker_an_action_is_stored_and_shown_waiting_for_the_offline_player(app, web, api, database,
                                                                                      settings, clock):
    with transaction(database.sessions) as session:
        register_player(session, "hn-hadong-phula-001", settings, Signer.load_or_create(settings.data_dir), "",
                        clock.now())
    answer = api("phula-head").post("/api/v1/screens/hn-hadong-phula-001/actions/screenshot")
    assert answer.status_code == 202, answer.text
    action = answer.json()
    assert (action["state"], action["requested_by"], action["reason"]) == ("waiting", "phula-head", None)
    sign_in(web, "phula-head")
    page = web.get(f"/screens/hn-hadong-phula-001?action={action['id']}&lang=en").text
    assert 'id="action-asked"' in page and "Waiting: the screen is offline" in page
    assert clock.now().astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%d/%m/%Y") in page
