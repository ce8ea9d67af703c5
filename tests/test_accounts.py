"""Staff accounts: passwords hashed with argon2, sign-in and out, throttling, CSRF, bearer tokens, scope."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from campaigns.models import User
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


def test_five_failed_logins_make_the_name_wait_even_with_the_right_password(web, clock):
    for _ in range(5):
        assert web.post("/login", data={"username": "phula-head", "password": "wrong password!"}).status_code == 401
    assert web.post("/login", data={"username": "phula-head", "password": PASSWORD}).status_code == 429
    clock.advance(timedelta(minutes=16))
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

    result = subprocess.run([sys.executable, "-m", "signage.cli", "user", "create", "root", "-o", "hn",
                             "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True,
                            env=cli_env, timeout=60)
    assert result.returncode == 0, result.stderr
    with database.sessions() as s:
        user = s.scalar(select(User).where(User.username == "root"))
        assert user.role.value == "admin" and user.password_hash.startswith("$argon2id$")
