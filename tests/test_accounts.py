"""Staff accounts: passwords hashed with argon2, sign-in and out, throttling, CSRF, bearer tokens, scope."""

from __future__ import annotations

from datetime import timedelta

import argon2
import pytest
from sqlalchemy import select

from campaigns import accounts
from campaigns.models import User
from signage.config import Settings
from tests.conftest import PASSWORD, sign_in


def test_passwords_are_stored_as_argon2_hashes_never_as_given(session, staff):
    stored = session.scalar(select(User.password_hash).where(User.username == "phula-staff"))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_pages_send_visitors_who_are_not_signed_in_to_the_login_page(web):
    answer = web.get("/fleet?org=hn-hadong", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Ffleet%3Forg%3Dhn-hadong"


def test_signing_in_sets_an_httponly_samesite_cookie_and_returns_to_the_page_asked_for(web):
    answer = web.post("/login", data={"username": "phula-staff", "password": PASSWORD, "next": "/fleet"},
                      follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/fleet"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "Phula Staff" in web.get("/fleet").text


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(web):
    answer = web.post("/login", data={"username": "phula-staff", "password": "not the password"})
    assert answer.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in answer.text


def test_the_login_form_never_redirects_to_another_site(web):
    answer = web.post("/login", data={"username": "phula-staff", "password": PASSWORD,
                                      "next": "//evil.example/x"}, follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_five_failed_logins_make_the_name_wait_at_that_address_even_with_the_right_password(web, clock):
    for _ in range(5):
        assert web.post("/login", data={"username": "phula-head", "password": "wrong password!"}).status_code == 401
    answer = web.post("/login", data={"username": "phula-head", "password": PASSWORD})
    assert answer.status_code == 429 and answer.headers["retry-after"] == "60"
    clock.advance(timedelta(minutes=1))
    assert web.post("/login", data={"username": "phula-head", "password": PASSWORD},
                    follow_redirects=False).status_code == 303


def test_a_form_without_the_csrf_token_is_refused(web):
    sign_in(web, "phula-staff")
    answer = web.post("/logout", follow_redirects=False)
    assert answer.status_code == 403
    assert "CSRF" in answer.json()["detail"]


def test_signing_out_ends_the_session(web):
    csrf = sign_in(web, "phula-staff")
    assert web.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert web.get("/fleet", follow_redirects=False).status_code == 303


def test_the_session_ends_after_its_hours(web, clock, settings):
    sign_in(web, "phula-staff")
    clock.advance(timedelta(hours=settings.session_hours, seconds=1))
    assert web.get("/fleet", follow_redirects=False).status_code == 303


def test_the_api_answers_401_as_problem_json_without_a_token(web):
    answer = web.get("/api/v1/me")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert "POST /api/v1/auth/token" in answer.json()["detail"]


def test_a_bearer_token_identifies_its_user(api):
    me = api("hadong-head").get("/api/v1/me").json()
    assert (me["username"], me["role"], me["organisation_id"]) == ("hadong-head", "head", "hn-hadong")


def test_a_revoked_token_no_longer_works(api):
    client = api("phula-staff")
    (token,) = client.get("/api/v1/me/tokens").json()
    assert client.delete(f"/api/v1/me/tokens/{token['id']}").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_users_are_listed_only_within_the_callers_subtree(api):
    names = {u["username"] for u in api("hadong-manager").get("/api/v1/users?limit=100").json()["items"]}
    assert names == {"hadong-staff", "hadong-head", "hadong-manager", "phula-staff", "phula-head",
                     "vanquan-staff", "vanquan-head"}


def test_a_user_of_another_ward_is_not_found(api):
    client = api("phula-head")
    other = client.get("/api/v1/users", params={"limit": 1}).json()  # proves the route works for this user
    assert other["total"] == 2
    vanquan = api("vanquan-head").get("/api/v1/me").json()["id"]
    answer = client.get(f"/api/v1/users/{vanquan}")
    assert answer.status_code == 404


def test_only_admins_create_users_and_only_inside_their_subtree(api):
    body = {"username": "new-staff", "full_name": "New Staff", "role": "staff", "organisation_id": "hn-bavi",
            "password": PASSWORD}
    assert api("hadong-head").post("/api/v1/users", json=body).status_code == 403
    assert api("city-admin").post("/api/v1/users", json=body).status_code == 201
    answer = api("city-admin").post("/api/v1/users", json={**body, "username": "short-pass", "password": "abc"})
    assert answer.status_code == 422 and "at least 10" in answer.json()["detail"]


def test_an_invalid_request_body_is_answered_with_the_fields_to_fix(api):
    answer = api("city-admin").post("/api/v1/users", json={"username": "x"})
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert {"body.full_name", "body.role", "body.organisation_id", "body.password"} <= fields


def test_signage_user_create_makes_the_first_admin(cli_env, fleet, database):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "signage_cli", "user", "create", "root", "-o", "hn",
                             "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True,
                            env=cli_env, timeout=60)
    assert result.returncode == 0, result.stderr
    with database.sessions() as s:
        user = s.scalar(select(User).where(User.username == "root"))
        assert user.role.value == "admin" and user.password_hash.startswith("$argon2id$")


def test_signage_user_password_sets_it_and_a_refusal_ends_the_command_with_its_reason(cli_env, fleet, database):
    import subprocess
    import sys

    def user(*words: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "signage_cli", "user", *words, "--password-stdin"],
                              input=password + "\n", capture_output=True, text=True, env=cli_env, timeout=60)

    short = user("create", "root", "-o", "hn", password="short")
    assert short.returncode == 1 and "the password has 5 characters" in short.stderr, short.stderr
    assert user("create", "root", "-o", "hn").returncode == 0
    nobody = user("password", "nobody")
    assert nobody.returncode == 1 and "there is no user 'nobody'" in nobody.stderr, nobody.stderr
    changed = user("password", "root", password="another long password")
    assert changed.returncode == 0 and "password of root set" in changed.stdout, changed.stderr
    with database.sessions() as s:
        user_row = s.scalar(select(User).where(User.username == "root"))
        assert accounts.password_matches(user_row.password_hash, "another long password")


# -- what a login gives away (issue 16, item 6) ------------------------------------------------------------------

ATTACKER, OWNER, PROXY = "203.0.113.7", "198.51.100.20", "10.0.0.2"
WRONG = "not the password"


@pytest.fixture
def client_from(app, web):
    """client_from("203.0.113.7") -> a client of the running app whose requests come from that socket address."""
    from fastapi.testclient import TestClient

    return lambda address: TestClient(app, base_url="http://127.0.0.1", client=(address, 50000))


def token(client, username: str, password: str, **headers):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password}, headers=headers)


class CountingHasher(argon2.PasswordHasher):
    """The accounts' hasher, counting the hashes it verifies passwords against."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verified: list[str] = []

    def verify(self, hash: str, password: str) -> bool:  # noqa: A002 - argon2's own parameter name
        self.verified.append(hash)
        return super().verify(hash, password)


def test_an_unknown_user_name_costs_the_same_verification_as_a_known_one(session, staff, clock, monkeypatch):
    """Before the fix an unknown name was refused without any verification (46-80 ms against 231-311 ms)."""
    stored = session.scalar(select(User.password_hash).where(User.username == "phula-staff"))
    hasher = CountingHasher.from_parameters(argon2.extract_parameters(stored))
    monkeypatch.setattr(accounts, "_hasher", hasher)

    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "phula-staff", WRONG, clock, ATTACKER)
    assert hasher.verified == [stored]
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "no-such-user", WRONG, clock, ATTACKER)
    assert len(hasher.verified) == 2
    assert hasher.verified == [stored, accounts.dummy_hash()]  # one verification, against the dummy hash
    assert argon2.extract_parameters(accounts.dummy_hash()) == argon2.extract_parameters(stored)
    user = session.scalar(select(User).where(User.username == "phula-head"))
    user.active = False
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "phula-head", PASSWORD, clock, ATTACKER)  # inactive: verified all the same
    assert hasher.verified == [stored, accounts.dummy_hash(), stored]


def test_guesses_from_one_address_do_not_lock_the_owner_out_from_another(client_from):
    """Before the fix five wrong guesses from anywhere made the name wait 15 minutes wherever its owner was."""
    attacker, owner = client_from(ATTACKER), client_from(OWNER)
    assert [token(attacker, "phula-head", WRONG).status_code for _ in range(5)] == [401] * 5
    assert token(attacker, "phula-head", PASSWORD).status_code == 429  # even the right password, from there
    assert token(owner, "phula-head", PASSWORD).status_code == 201
    # The owner's success does not let the attacker off.
    assert token(attacker, "phula-head", PASSWORD).status_code == 429


def test_the_attacker_waits_longer_after_each_further_failure_up_to_a_cap(client_from, clock):
    attacker = client_from(ATTACKER)
    for _ in range(5):
        token(attacker, "phula-head", WRONG)
    waits = []
    for _ in range(6):
        refused = token(attacker, "phula-head", WRONG)
        assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(timedelta(seconds=waits[-1] - 1))
        assert token(attacker, "phula-head", WRONG).status_code == 429  # a second early: still waiting
        clock.advance(timedelta(seconds=1))
        assert token(attacker, "phula-head", WRONG).status_code == 401  # one more guess, then a longer wait
    assert waits == [60, 120, 240, 480, 900, 900]


def test_guesses_sent_in_parallel_when_the_delay_ends_get_one_try_between_them(client_from, clock):
    from concurrent.futures import ThreadPoolExecutor

    attacker = client_from(ATTACKER)
    for _ in range(5):
        token(attacker, "phula-head", WRONG)
    clock.advance(timedelta(minutes=1))
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: token(client_from(ATTACKER), "phula-head", WRONG).status_code, range(6)))
    assert sorted(answers) == [401] + [429] * 5


def test_the_login_form_delays_the_attacker_and_lets_the_owner_in(client_from):
    attacker, owner = client_from(ATTACKER), client_from(OWNER)
    for _ in range(5):
        assert attacker.post("/login", data={"username": "phula-head", "password": WRONG}).status_code == 401
    refused = attacker.post("/login", data={"username": "phula-head", "password": PASSWORD})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert "thử lại sau" in refused.text
    answer = owner.post("/login", data={"username": "phula-head", "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 303


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(client_from):
    attacker = client_from(ATTACKER)
    for n in range(5):  # a new made-up address each time changes nothing: the socket's address counts
        assert token(attacker, "phula-head", WRONG, **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code == 401
    assert token(attacker, "phula-head", PASSWORD, **{"X-Forwarded-For": OWNER}).status_code == 429


@pytest.fixture
def behind_proxy(settings, clock, database, staff):
    """The app with SIGNAGE_TRUSTED_PROXIES=10.0.0.0/24, reached through the proxy at 10.0.0.2."""
    from fastapi.testclient import TestClient

    from scheduler.app import create_app

    trusting = Settings(_env_file=None, data_dir=settings.data_dir, database_url=settings.database_url, mqtt=False,
                        jobs=False, trusted_proxies="10.0.0.0/24")
    with TestClient(create_app(trusting, clock), base_url="http://127.0.0.1", client=(PROXY, 50000)) as client:
        yield client


def test_behind_a_trusted_proxy_the_right_most_untrusted_forwarded_address_counts(behind_proxy):
    proxy = behind_proxy
    for _ in range(5):
        assert token(proxy, "phula-head", WRONG, **{"X-Forwarded-For": ATTACKER}).status_code == 401
    # The attacker's own made-up entry, left of what the proxy appended, is not believed.
    spoofed = {"X-Forwarded-For": f"{OWNER}, {ATTACKER}"}
    assert token(proxy, "phula-head", PASSWORD, **spoofed).status_code == 429
    # Another proxy of the trusted network between them changes nothing either.
    assert token(proxy, "phula-head", PASSWORD, **{"X-Forwarded-For": f"{ATTACKER}, 10.0.0.9"}).status_code == 429
    assert token(proxy, "phula-head", PASSWORD, **{"X-Forwarded-For": OWNER}).status_code == 201


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    (ATTACKER, None, ATTACKER),
    (ATTACKER, OWNER, ATTACKER),  # not a trusted proxy: its header is the client's own words
    (PROXY, None, PROXY),
    (PROXY, OWNER, OWNER),
    (PROXY, f"{OWNER}, {ATTACKER}", ATTACKER),
    (PROXY, f"{ATTACKER}, 10.0.0.9, 10.0.0.3", ATTACKER),
    (PROXY, "10.0.0.9, 10.0.0.3", "10.0.0.9"),  # only proxies: the left-most
    ("::ffff:10.0.0.2", OWNER, OWNER),
])
def test_client_address(peer, forwarded, expected):
    from types import SimpleNamespace

    from starlette.datastructures import Headers

    from scheduler.web.deps import client_address

    settings = Settings(_env_file=None, trusted_proxies="10.0.0.0/24")
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)),
                              client=SimpleNamespace(host=peer),
                              headers=Headers({"x-forwarded-for": forwarded} if forwarded else {}))
    assert client_address(request) == expected


def test_trusted_proxies_are_read_from_the_environment_comma_separated(monkeypatch):
    monkeypatch.setenv("SIGNAGE_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    settings = Settings(_env_file=None)
    assert [str(network) for network in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert settings.trusts_proxy("10.1.2.3") and not settings.trusts_proxy("11.0.0.1")
    assert Settings(_env_file=None, trusted_proxies=[]).trusted_proxies == []


# -- the OAuth2 password form (issue 18, item 6) -----------------------------------------------------------------


def form_token(client, username: str, password: str, **fields):
    return client.post("/api/v1/auth/token", data={"grant_type": "password", "username": username,
                                                   "password": password, **fields})


def test_the_oauth2_password_form_gives_a_bearer_token_as_json_does(client_from):
    """What OAuth2 client libraries send (before: 422, the route read JSON only)."""
    client = client_from(OWNER)
    answer = form_token(client, "phula-staff", PASSWORD, scope="", client_id="reports-script", name="reports")
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert issued["token_type"] == "bearer" and issued["expires_at"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert me.json()["username"] == "phula-staff"
    tokens = client.get("/api/v1/me/tokens", headers={"Authorization": f"Bearer {issued['access_token']}"}).json()
    assert [t["name"] for t in tokens] == ["reports"]
    # Without grant_type (FastAPI's OAuth2PasswordRequestForm takes it as optional) and with the charset added.
    from urllib.parse import urlencode

    bare = client.post("/api/v1/auth/token", content=urlencode({"username": "phula-staff", "password": PASSWORD}),
                       headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert bare.status_code == 201, bare.text


def test_the_form_is_refused_with_the_same_problems_as_json(client_from):
    client = client_from(OWNER)
    for answer in (form_token(client, "phula-staff", PASSWORD, grant_type="client_credentials"),
                   client.post("/api/v1/auth/token", data={"username": "phula-staff"})):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in client.post("/api/v1/auth/token", data={"grant_type": "x"}).json()["errors"]}
    assert fields == {"body.grant_type", "body.username", "body.password"}
    json_fields = {e["field"] for e in client.post("/api/v1/auth/token", json={}).json()["errors"]}
    assert json_fields == {"body.username", "body.password"}
    wrong = form_token(client, "phula-staff", WRONG)
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert "wrong user name or password" in wrong.json()["detail"]
    other = client.post("/api/v1/auth/token", content=b"phula-staff:" + PASSWORD.encode(),
                        headers={"content-type": "text/plain"})
    assert other.status_code == 415 and "application/x-www-form-urlencoded" in other.json()["detail"]
    broken = client.post("/api/v1/auth/token", content=b"{\"username\": ", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.headers["content-type"] == "application/problem+json"
    # A NUL in the user name (which the throttle stores; PostgreSQL refuses NUL in text) is the request's error.
    for nul in (client.post("/api/v1/auth/token", data={"username": "phula\x00staff", "password": WRONG}),
                client.post("/api/v1/auth/token", json={"username": "phula\x00staff", "password": WRONG})):
        assert nul.status_code == 422, nul.text
        assert {e["field"] for e in nul.json()["errors"]} == {"body.username"}


def test_failures_through_the_form_and_through_json_are_throttled_together(client_from):
    attacker, owner = client_from(ATTACKER), client_from(OWNER)
    assert [form_token(attacker, "phula-head", WRONG).status_code for _ in range(3)] == [401] * 3
    assert [token(attacker, "phula-head", WRONG).status_code for _ in range(2)] == [401] * 2
    for answer in (form_token(attacker, "phula-head", PASSWORD), token(attacker, "phula-head", PASSWORD)):
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
        assert answer.headers["content-type"] == "application/problem+json"
    assert form_token(owner, "phula-head", PASSWORD).status_code == 201


def test_the_schema_offers_both_bodies(web):
    operation = web.get("/openapi.json").json()["paths"]["/api/v1/auth/token"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/json"]["schema"]["required"] == ["username", "password"]
    form = content["application/x-www-form-urlencoded"]["schema"]
    assert {"grant_type", "username", "password", "scope", "client_id", "client_secret"} <= set(form["properties"])
    assert {"401", "415", "422", "429"} <= set(operation["responses"])
