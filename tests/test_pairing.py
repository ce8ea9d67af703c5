"""Pairing a screen PC with a code (scheduler/pairing.py, scheduler/web/routes/pairing.py): codes that are
expired, used, wrong or for another unit's screen are refused with a clear message, wrong codes from one address
are throttled, nothing secret is served before the claim, the config is served once and is the player's own
(its credentials work), and each claim is audited. Both databases; the end to end with a real player is in
tests/test_pairing_e2e.py."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select

from campaigns.models import AuditEntry, Screen
from scheduler.models import PairingRequest
from scheduler.pairing import CODE_TTL, WRONG_CODES_ALLOWED
from scheduler.players import player_secret_matches
from signage.player_config import PlayerConfig
from tests.conftest import sign_in

SCREEN = "hn-hadong-phula-001"


def ask(web) -> tuple[str, str]:
    """A PC's request: (its secret, the code it shows)."""
    secret = secrets.token_urlsafe(32)
    answer = web.post("/players/pairing", json={"secret": secret})
    assert answer.status_code == 201, answer.text
    return secret, answer.json()["code"]


def poll(web, secret: str):
    return web.post("/players/pairing/config", json={"secret": secret})


def test_a_code_claimed_by_staff_gives_its_pc_the_players_config_once(web, api, database, clock):
    secret, code = ask(web)
    assert len(code) == 7 and code[3] == "-"
    waiting = poll(web, secret)
    assert waiting.status_code == 202 and waiting.json()["state"] == "waiting"
    assert "password" not in waiting.text
    with database.sessions() as session:
        stored = session.scalar(select(PairingRequest))
        assert secret not in {stored.code, stored.secret_sha256, stored.client}  # only the secret's hash is kept

    claimed = api("phula-staff").post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code.lower()})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["screen_id"] == SCREEN and claimed.json()["claimed_by"] == "phula-staff"
    assert "password" not in claimed.text  # staff never see the player's secret

    fetched = poll(web, secret)
    assert fetched.status_code == 200, fetched.text
    config = PlayerConfig.model_validate(fetched.json())
    assert config.player_id == SCREEN and fetched.headers["cache-control"] == "no-store"
    with database.sessions() as session:
        assert player_secret_matches(session, SCREEN, config.password)
        audited = [(entry.action, entry.username) for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == SCREEN).order_by(AuditEntry.id))]
    assert audited[-2:] == [("screen.paired", "phula-staff"), ("screen.player_config_fetched", "phula-staff")]

    again = poll(web, secret)
    assert again.status_code == 410 and "fetched already" in again.json()["detail"]
    assert "password" not in again.text


def test_a_wrong_secret_fetches_nothing_even_after_the_claim(web, api):
    secret, code = ask(web)
    assert api("phula-staff").post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code}).status_code == 200
    stranger = poll(web, secrets.token_urlsafe(32))
    assert stranger.status_code == 404 and "password" not in stranger.text
    assert poll(web, secret).status_code == 200
    assert web.post("/players/pairing", json={"secret": "short"}).status_code == 422


def test_a_used_code_is_refused(web, api):
    _, code = ask(web)
    staff = api("phula-staff")
    assert staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code}).status_code == 200
    again = staff.post("/api/v1/screens/hn-hadong-phula-002/pairing", json={"code": code})
    assert again.status_code == 422
    assert f"the code {code} was used already" in again.json()["detail"]


def test_an_expired_code_is_refused_and_its_pc_asks_for_another(web, api, clock):
    secret, code = ask(web)
    clock.advance(CODE_TTL + timedelta(seconds=1))
    refused = api("phula-staff").post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code})
    assert refused.status_code == 422 and f"the code {code} expired" in refused.json()["detail"]
    expired = poll(web, secret)
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]


def test_a_wrong_code_is_refused_and_twenty_from_one_address_are_throttled(web, api, clock):
    staff = api("phula-staff")
    for _ in range(WRONG_CODES_ALLOWED):
        wrong = staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": "ZZZ-ZZ2"})
        assert wrong.status_code == 422, wrong.text
        assert "no screen PC shows the code 'ZZZ-ZZ2'" in wrong.json()["detail"]
    _, code = ask(web)
    throttled = staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code})  # even the right one waits
    assert throttled.status_code == 429 and "too many wrong pairing codes" in throttled.json()["detail"]
    assert int(throttled.headers["retry-after"]) > 0
    clock.advance(CODE_TTL + timedelta(seconds=1))
    _, fresh = ask(web)
    assert staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": fresh}).status_code == 200


def test_another_units_screen_answers_404_and_a_manager_may_not_claim(web, api):
    secret, code = ask(web)
    other_ward = api("phula-staff").post("/api/v1/screens/hn-hadong-vanquan-001/pairing", json={"code": code})
    assert other_ward.status_code == 404 and other_ward.headers["content-type"] == "application/problem+json"
    manager = api("hadong-manager").post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code})
    assert manager.status_code == 403
    assert poll(web, secret).status_code == 202  # still unclaimed


def test_the_screen_page_form_pairs_and_says_why_it_refused(web, app, database):
    csrf = sign_in(web, "phula-staff")
    secret, code = ask(web)
    wrong = web.post(f"/screens/{SCREEN}/pairing", data={"code": "AAA-AAA", "csrf_token": csrf},
                     follow_redirects=False)
    assert wrong.status_code == 303 and "pairing=wrong" in wrong.headers["location"]
    paired = web.post(f"/screens/{SCREEN}/pairing", data={"code": code, "csrf_token": csrf}, follow_redirects=False)
    assert paired.status_code == 303 and "pairing=paired" in paired.headers["location"]
    assert poll(web, secret).status_code == 200
    page = web.get(f"/screens/{SCREEN}?pairing=paired")
    assert page.status_code == 200 and 'name="code"' in page.text


def test_a_retired_screen_cannot_be_paired(web, api, database, clock):
    with database.sessions() as session:
        session.get(Screen, SCREEN).retired_at = clock.now()
        session.commit()
    secret, code = ask(web)
    refused = api("phula-staff").post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code})
    assert refused.status_code == 409 and "is retired" in refused.json()["detail"]
    assert poll(web, secret).status_code == 202


def test_one_address_holds_at_most_ten_open_codes(web, clock):
    for _ in range(10):
        ask(web)
    refused = web.post("/players/pairing", json={"secret": secrets.token_urlsafe(32)})
    assert refused.status_code == 429 and "too many pairing codes" in refused.json()["detail"]
    clock.advance(CODE_TTL + timedelta(seconds=1))
    ask(web)


def paired(web, staff) -> PlayerConfig:
    """A PC paired with SCREEN: its config."""
    secret, code = ask(web)
    assert staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code}).status_code == 200
    return PlayerConfig.model_validate(poll(web, secret).json())


def test_pairing_a_screen_that_has_a_player_needs_replace_and_then_the_old_pc_stops_working(web, api, database):
    staff = api("phula-staff")
    old = paired(web, staff)
    secret, code = ask(web)
    refused = staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code})
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert "has a player already" in body["detail"] and "replace: true" in body["detail"]
    assert [error["field"] for error in body["errors"]] == ["replace"] and "replace: true" in body["errors"][0]["fix"]
    assert poll(web, secret).status_code == 202  # the code stays unclaimed, the old PC keeps working
    with database.sessions() as session:
        assert player_secret_matches(session, SCREEN, old.password)

    assert staff.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code, "replace": True}).status_code == 200
    new = PlayerConfig.model_validate(poll(web, secret).json())
    with database.sessions() as session:
        assert player_secret_matches(session, SCREEN, new.password)
        assert not player_secret_matches(session, SCREEN, old.password)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == SCREEN,
                                                         AuditEntry.action == "screen.paired")
                                .order_by(AuditEntry.id.desc())).first()
        assert entry.after["replaces_player_of"] is not None


def test_the_screen_page_warns_before_a_new_code_replaces_the_screens_player(web, api):
    page = "/screens/" + SCREEN
    csrf = sign_in(web, "phula-staff")
    assert 'id="pairing-replaces"' not in web.get(page).text  # no player yet: nothing to replace
    paired(web, api("phula-staff"))
    shown = web.get(page).text
    assert "Màn hình này đã có máy phát" in shown and "ghép mã mới sẽ thay thế máy cũ" in shown
    assert 'id="pairing-replace" required' in shown

    secret, code = ask(web)
    unticked = web.post(f"{page}/pairing", data={"code": code, "csrf_token": csrf}, follow_redirects=False)
    assert unticked.status_code == 303 and "pairing=unconfirmed" in unticked.headers["location"]
    assert "đánh dấu ô xác nhận" in web.get(unticked.headers["location"]).text
    assert poll(web, secret).status_code == 202
    ticked = web.post(f"{page}/pairing", data={"code": code, "replace": "true", "csrf_token": csrf},
                      follow_redirects=False)
    assert ticked.status_code == 303 and "pairing=paired" in ticked.headers["location"]
    assert poll(web, secret).status_code == 200
