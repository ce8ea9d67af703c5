"""Security suite: scope and sign-in on every route of the app, enumerated from FastAPI's router, so that a new
endpoint cannot escape: each route must have an entry in the tables below, or the test naming it fails.

- every route with an object id answers 404 (problem+json for the API) to an admin of another ward, for an object
  of Phú La: admins pass every role check, so only the scope can refuse them;
- every list (API and pages) shows an admin of another ward nothing of Phú La;
- without signing in, every route but the public ones answers 401 (API) or a redirect to the login page (pages).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from campaigns.accounts import create_user
from scheduler.models import ScreenCommand
from scheduler.screen_actions import ACTION_TTL
from signage.db import transaction
from tests.conftest import sign_in
from tests.test_alert_api import issue
from tests.test_campaign_api import make_campaign
from tests.test_campaign_workflow import add_to_library
from tests.test_round_routes import open_round_of

pytestmark = pytest.mark.security

OUTSIDER = "vanquan-admin"  # an admin of the ward of Văn Quán, beside Phú La in Hà Đông
# Names only Phú La's objects carry: none of them may appear in what the outsider is shown.
SECRET_CAMPAIGN, SECRET_GROUP, SECRET_CLIP = "Chiến dịch riêng Phú La", "phula-quay-rieng", "phula-rieng.mp4"
PHULA_MARKERS = [SECRET_CAMPAIGN, SECRET_GROUP, SECRET_CLIP, "hn-hadong-phula", "hadong-phula", "phula-staff"]
SECRET_SERIES = "Báo cáo riêng Phú La"  # a report series Phú La asks of the units below it
PHULA_MARKERS.append(SECRET_SERIES)
SECRET_ROUTE = "Lộ trình loa riêng Phú La"  # a mobile loudspeaker round Phú La recorded
PHULA_MARKERS.append(SECRET_ROUTE)

# Routes anyone may call: the login page and the token endpoint (they authenticate by their body), the health
# check, static files, the API's description, and "/" (a redirect to /campaigns, which asks for sign-in); the
# players' endpoints have credentials of their own.
PUBLIC = {"GET /login", "POST /login", "GET /healthz", "GET /readyz", "/static", "GET /openapi.json", "GET /docs",
          "GET /docs/oauth2-redirect", "GET /redoc", "POST /api/v1/auth/token", "GET /",
          # A screen PC asking to be paired and polling for its config: what proves it is its own secret.
          "POST /players/pairing", "POST /players/pairing/config"}
PLAYER_AUTH = {"GET /media/{sha256}", "HEAD /media/{sha256}", "POST /players/{player_id}/screenshot"}


def routes(app) -> list[str]:
    """'METHOD path' of every route of the app (mounts by path alone), from FastAPI's own router."""
    found = []
    for context in iter_route_contexts(app.routes):
        methods = sorted((context.methods or set()) - {"HEAD"}) or [None]
        if context.methods == {"HEAD"}:
            methods = ["HEAD"]
        found += [f"{method} {context.path}" if method else context.path for method in methods]
    return found


def items(answer) -> list:
    body = answer.json()
    return body["items"] if isinstance(body, dict) else body


@pytest.fixture
def phula(api, database, settings, clock, make_media, password_hash) -> dict[str, Any]:
    """Phú La's objects of every kind, and an admin of Văn Quán."""
    with transaction(database.sessions) as session:
        clip = add_to_library(session, settings, clock, make_media(SECRET_CLIP, seconds=2), "hn-hadong-phula")
        create_user(session, username=OUTSIDER, full_name="Quản trị Văn Quán", role="admin",
                    organisation_id="hn-hadong-vanquan", password_hash=password_hash, clock=clock)
        action = ScreenCommand(command_id=str(uuid.uuid4()), screen_id="hn-hadong-phula-001", action="screenshot",
                               requested_by="phula-staff", requested_at=clock.now(),
                               expires_at=clock.now() + ACTION_TTL)
        session.add(action)
    staff, head = api("phula-staff"), api("phula-head")
    campaign = make_campaign(staff, clip, {"sites": ["hadong-phula"]}, name=SECRET_CAMPAIGN)
    answer = head.post(f"/api/v1/campaigns/{campaign}/overrides", json={
        "organisation_id": "hn-hadong-phula", "plays_per_day": 20, "reason": "Tăng tần suất"})
    assert answer.status_code in (200, 201), answer.text
    [override] = items(head.get(f"/api/v1/campaigns/{campaign}/overrides"))
    group = staff.post("/api/v1/groups", json={"id": SECRET_GROUP, "name": "Quầy", "organisation_id":
                                               "hn-hadong-phula", "screens": ["hn-hadong-phula-001"]})
    assert group.status_code == 201, group.text
    token = items(staff.get("/api/v1/me/tokens"))[0]
    plan = staff.post("/api/v1/mobile-rounds/plans", json={"first_day": "2024-08-01", "last_day": "2024-08-31"})
    loudspeaker_round = staff.post("/api/v1/mobile-rounds", json={"duration_minutes": 45, "route": SECRET_ROUTE})
    assert plan.status_code == 201 and loudspeaker_round.status_code == 201, (plan.text, loudspeaker_round.text)
    user = next(u for u in items(api("city-admin").get("/api/v1/users", params={"limit": 100}))
                if u["username"] == "phula-staff")
    return {"campaign_id": campaign, "override_id": override["id"], "alert_id": issue(staff, {"sites": [
        "hadong-phula"]})["id"], "sha256": clip, "group_id": SECRET_GROUP, "token_id": token["id"],
        "user_id": user["id"], "site_id": "hadong-phula", "screen_id": "hn-hadong-phula-001",
        "organisation_id": "hn-hadong-phula", "step": "dates", "kind": "compliance",
        "player_id": "hn-hadong-phula-001", "action": "screenshot", "command_id": action.command_id,
        "reporting_round_id": open_round_of(head, "hn-hadong-phula", "phula-bao-cao-rieng", SECRET_SERIES),
        "fmt": "xlsx", "position": 0, "round_id": loudspeaker_round.json()["id"], "plan_id": plan.json()["id"]}


# A body that passes validation, so that what answers is the route's own scope check: (json for the API, form
# fields for pages; None for none).
API_BODIES: dict[str, dict | None] = {
    "PATCH /api/v1/users/{user_id}": {"full_name": "Tên mới"},
    "PATCH /api/v1/organisations/{organisation_id}": {"name": "Tên mới"},
    "PATCH /api/v1/sites/{site_id}": {"peak_windows": {"mon-fri": ["08:00-10:00"]}},
    "PATCH /api/v1/screens/{screen_id}": {"name": "Tên mới"},
    "PATCH /api/v1/groups/{group_id}": {"name": "Tên mới"},
    "PATCH /api/v1/campaigns/{campaign_id}": {"plays_per_day": 12},
    "PUT /api/v1/campaigns/{campaign_id}/targets": {"sites": ["hadong-vanquan"]},
    "PUT /api/v1/campaigns/{campaign_id}/creatives": {"creatives": []},
    "POST /api/v1/campaigns/{campaign_id}/creatives/{position}/versions": {"sha256": "0" * 64, "language": "en"},
    "POST /api/v1/campaigns/{campaign_id}/reject": {"note": "Không"},
    "POST /api/v1/campaigns/{campaign_id}/overrides": {"organisation_id": "hn-hadong-vanquan", "plays_per_day": 20,
                                                       "reason": "Tăng"},
    "POST /api/v1/alerts/{alert_id}/reject": {"note": "Không"},
    "POST /api/v1/alerts/{alert_id}/stop": {"reason": "Nhầm"},
    "POST /api/v1/screens/{screen_id}/pairing": {"code": "ABC-DEF"},
    "PUT /api/v1/rounds/{reporting_round_id}/submission": {"values": {}},
    "POST /api/v1/rounds/{reporting_round_id}/submission/return": {"note": "Sai số liệu"},
    "PATCH /api/v1/mobile-rounds/{round_id}": {"duration_minutes": 30},
}
PAGE_FORMS: dict[str, dict] = {
    "POST /sites/{site_id}": {"peak_mon-fri": "08:00-10:00"},
    "POST /campaigns/{campaign_id}/edit/{step}": {"start_date": "2024-08-21", "end_date": "2024-08-31"},
    "POST /campaigns/{campaign_id}/reject": {"note": "Không"},
    "POST /campaigns/{campaign_id}/overrides": {"organisation_id": "hn-hadong-vanquan", "plays_per_day": "20",
                                                "reason": "Tăng"},
    "POST /alerts/{alert_id}/reject": {"note": "Không"},
    "POST /alerts/{alert_id}/stop": {"reason": "Nhầm"},
    "POST /screens/{screen_id}/pairing": {"code": "ABC-DEF"},
    "POST /mobile-rounds/{round_id}/correct": {"started_at": "2024-08-20T09:00", "duration_minutes": "30",
                                               "route": "Tổ 1"},
}
# Routes whose path parameter is not an object: reports name their kind, and are scoped by `?scope=`.
QUERY_SCOPED = {"GET /api/v1/reports/{kind}": {"organisation_id": "hn-hadong-phula"},
                "GET /api/v1/reports/{kind}/export": {"organisation_id": "hn-hadong-phula", "format": "csv"}}


def fill(route: str, ids: dict[str, Any]) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    missing = [name for name in re.findall(r"{(\w+)}", path) if name not in ids]
    assert not missing, f"{route}: no object of Phú La for {missing}; add one to the `phula` fixture"
    return method, re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]), path)


def test_every_route_with_an_object_id_answers_404_to_an_admin_of_another_ward(app, api, web, phula):
    outsider = api(OUTSIDER)
    csrf = sign_in(web, OUTSIDER)
    answers = {}
    for route in routes(app):
        if "{" not in route or route in PLAYER_AUTH:
            continue
        method, url = fill(route, phula)
        if url.startswith("/api/"):
            answer = outsider.request(method, url, json=API_BODIES.get(route), params=QUERY_SCOPED.get(route))
            answers[route] = (answer.status_code, answer.headers.get("content-type"))
            expected = (404, "application/problem+json")
        else:
            data = {**PAGE_FORMS.get(route, {}), "csrf_token": csrf} if method == "POST" else None
            answer = web.request(method, url, data=data, follow_redirects=False)
            answers[route] = answer.status_code
            expected = 404
        if answers[route] == expected:
            del answers[route]
    assert answers == {}, "these answered something else than 404 to another ward's admin"


def test_every_list_shows_an_admin_of_another_ward_nothing_of_phula(app, api, web, phula):
    outsider = api(OUTSIDER)
    sign_in(web, OUTSIDER)
    seen = {}
    for route in routes(app):
        method, _, path = route.partition(" ")
        if method != "GET" or "{" in path or path in ("/login", "/healthz", "/readyz", "/openapi.json", "/docs",
                                                       "/redoc", "/docs/oauth2-redirect"):
            continue
        client = outsider if path.startswith("/api/") else web
        answer = client.get(path, params={"limit": 200} if path.startswith("/api/") else None)
        assert answer.status_code in (200, 303, 307), (route, answer.status_code, answer.text[:300])
        leaked = [marker for marker in PHULA_MARKERS if marker in answer.text]
        if leaked:
            seen[route] = leaked
    assert seen == {}, "these lists show another ward's objects"
    # And the ward itself sees them: the markers are real.
    assert SECRET_CAMPAIGN in api("hadong-staff").get("/api/v1/campaigns").text


def test_without_signing_in_every_route_but_the_public_ones_answers_401_or_sends_to_the_login_page(app, phula):
    anonymous = TestClient(app, base_url="http://127.0.0.1")
    wrong = []
    for route in routes(app):
        if route in PUBLIC or route.startswith("/static"):
            continue
        method, url = fill(route, phula)
        answer = anonymous.request(method, url, follow_redirects=False)
        if url.startswith("/api/") or route in PLAYER_AUTH:
            ok = answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
        else:
            ok = answer.status_code == 303 and answer.headers["location"].startswith("/login")
        if not ok:
            wrong.append((route, answer.status_code, answer.headers.get("location")))
    assert wrong == []
    # The public ones do answer without signing in.
    assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/login").status_code == 200


def test_a_bearer_token_that_is_forged_or_revoked_is_refused_everywhere(app, api, phula):
    staff = api("phula-staff")
    revoked_header = staff.headers["Authorization"]
    for token in items(staff.get("/api/v1/me/tokens")):
        assert staff.delete(f"/api/v1/me/tokens/{token['id']}").status_code in (200, 204)
    for header in (revoked_header, "Bearer " + "A" * 43, "Bearer ", "Basic cGh1bGEtc3RhZmY6eA=="):
        client = TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": header})
        for path in ("/api/v1/me", "/api/v1/campaigns", f"/api/v1/campaigns/{phula['campaign_id']}"):
            assert client.get(path).status_code == 401, (header, path)
