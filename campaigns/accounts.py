"""Staff accounts: argon2 password hashes, login throttling, browser sessions and API tokens.

Tokens (session cookies and bearer tokens) are random 32-byte strings shown once; the database keeps only
their sha256, so a copy of the database does not let anyone log in.

Signing in says nothing of which user names exist: a wrong password and an unknown name get the same answer, and
cost the same argon2 verification (an unknown name's password is checked against a dummy hash made with the same
parameters), so the time taken does not tell them apart either.

Failed sign-ins are throttled per user name *and* client address together, with a growing delay: the first
FREE_FAILURES of a (name, address) pair cost nothing; after them that pair waits FIRST_DELAY before its next try,
then twice as long after each further failure, up to MAX_DELAY. Someone guessing at a name from one address is
slowed down there, while the name's owner signs in from another address as usual: nobody can lock anyone out. A
pair's failures are forgotten after FAILURE_MEMORY, or when that pair signs in. The address is the web layer's to
find (scheduler/web/deps.py: the socket's peer, or X-Forwarded-For behind a trusted proxy).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, joinedload

from campaigns.access import Actor
from campaigns.kinds import Role
from campaigns.models import ApiToken, LoginFailure, Organisation, User, UserSession
from signage.clock import Clock
from signage.errors import Conflict, Invalid, NotFound

MIN_PASSWORD_LENGTH = 10
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
# Throttling per (user name, client address): see the module's notes.
FREE_FAILURES = 5
FIRST_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(days=1)
CLIENT_LENGTH = 64  # login_failures.client

_hasher = PasswordHasher()


class LoginRefused(Exception):
    """Wrong user name or password (never says which), or an inactive account."""


class LoginThrottled(Exception):
    """Too many failed sign-ins for this user name from this address: try again after `retry_after`."""

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins for this user name from this address; try again in "
                         f"{self.retry_after_seconds} s")

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds, rounded up (HTTP's Retry-After)."""
        return max(1, math.ceil(self.retry_after.total_seconds()))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password has {len(password)} characters", f"use at least {MIN_PASSWORD_LENGTH}")
    if password.strip() != password:
        raise Invalid("the password starts or ends with a space", "remove the surrounding spaces")


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def dummy_hash() -> str:
    """The hash an unknown user name's password is verified against: of a random password nobody knows, made once
    by the same hasher (so with the same parameters, and as slow to verify) as the users' own."""
    return _hasher.hash(secrets.token_urlsafe(32))


def login_delay(failures: int) -> timedelta:
    """How long a (user name, client address) pair with this many recent failures waits after the last one."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - FREE_FAILURES, 16), MAX_DELAY)  # 16: far past any cap


def check_username(username: str) -> str:
    if not 3 <= len(username) <= 64 or not set(username) <= USERNAME_CHARS:
        raise Invalid(f"the user name {username!r} is not allowed",
                      "use 3 to 64 characters: lowercase letters a-z, digits, '.', '_' or '-'")
    return username


def create_user(session: Session, *, username: str, full_name: str, role: Role | str, organisation_id: str,
                password: str | None = None, clock: Clock, password_hash: str | None = None) -> User:
    """A new user with `password` (hashed here) or an argon2 `password_hash` made earlier (accounts moved from
    another system keep their passwords)."""
    if (password is None) == (password_hash is None):
        raise ValueError("give the password or its hash, not both or neither")
    if password_hash is not None and not password_hash.startswith("$argon2"):
        raise Invalid("the password hash is not an argon2 hash", "give the $argon2id$... string, or the password")
    check_username(username)
    try:
        role = Role(role)
    except ValueError:
        raise Invalid(f"unknown role {role!r}", f"use one of {', '.join(r.value for r in Role)}") from None
    if session.get(Organisation, organisation_id) is None:
        raise Invalid(f"there is no organisation {organisation_id!r}",
                      "name an organisation of the fleet (signage fleet export lists them)")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Invalid(f"the user name {username!r} is taken", "choose another user name")
    user = User(username=username, full_name=full_name or username, role=role, organisation_id=organisation_id,
                password_hash=password_hash or hash_password(password), active=True, created_at=clock.now())
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)


def authenticate(session: Session, username: str, password: str, clock: Clock, client: str | None = None) -> User:
    """The user whose name and password these are; raises LoginThrottled or LoginRefused (and adds the failure:
    the caller commits even then). `client` is the address the attempt came from (None when unknown, which is
    then one address of its own).

    The throttle is checked first, so a waiting pair costs the server no hashing; then exactly one argon2
    verification, whether the name exists or not (see the module's notes)."""
    now = clock.now()
    username, client = username[:64], (client or "")[:CLIENT_LENGTH] or None
    _one_attempt_at_a_time(session, username, client)
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - FAILURE_MEMORY))
    wait = _throttled_until(session, username, client) - now
    if wait > timedelta(0):
        raise LoginThrottled(wait)
    user = session.scalar(select(User).where(User.username == username))
    # Verified even for an unknown name or an inactive account: the answer takes as long whichever it is.
    matches = password_matches(user.password_hash if user is not None and user.password_hash else dummy_hash(),
                               password)
    if user is None or not user.active or not matches:
        session.add(LoginFailure(username=username, client=client, at=now))
        raise LoginRefused()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.execute(delete(LoginFailure).where(*_pair(username, client)))
    return user


def _one_attempt_at_a_time(session: Session, username: str, client: str | None) -> None:
    """A pair's attempts one after the other, each seeing the failures of those before it, until the caller
    commits: otherwise guesses sent in parallel the moment a delay ends would all pass the check before any of
    them is recorded. PostgreSQL: a transaction-level advisory lock on the pair. SQLite: the DELETE that follows
    takes the database's one write lock, which is held until the commit."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"login\0{username}\0{client or ''}".encode()).digest()
        session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))


def _pair(username: str, client: str | None) -> tuple:
    return (LoginFailure.username == username,
            LoginFailure.client.is_(None) if client is None else LoginFailure.client == client)


def _throttled_until(session: Session, username: str, client: str | None) -> datetime:
    """When this (user name, client address) pair may try again: its last failure plus the delay its count of
    failures earns (the past, with fewer than FREE_FAILURES)."""
    count, last = session.execute(select(func.count(), func.max(LoginFailure.at))
                                  .where(*_pair(username, client))).one()
    if not count:
        return datetime.min.replace(tzinfo=UTC)
    return last + login_delay(count)


def open_session(session: Session, user: User, clock: Clock, hours: int) -> tuple[str, UserSession]:
    """A new browser session: the cookie's token (shown once) and its row with the CSRF token."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    row = UserSession(token_sha256=token_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                      created_at=now, expires_at=now + timedelta(hours=hours))
    session.add(row)
    session.flush()
    return token, row


def session_for_token(session: Session, token: str, clock: Clock) -> UserSession | None:
    row = session.get(UserSession, token_digest(token),
                      options=[joinedload(UserSession.user, innerjoin=True).joinedload(User.organisation,
                                                                                      innerjoin=True)])
    if row is None or row.expires_at <= clock.now() or not row.user.active:
        return None
    return row


def close_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_sha256 == token_digest(token)))


def issue_api_token(session: Session, user: User, name: str, clock: Clock,
                    days: int | None = 90) -> tuple[str, ApiToken]:
    token = "sgn_" + secrets.token_urlsafe(32)
    now = clock.now()
    row = ApiToken(user_id=user.id, name=name, token_sha256=token_digest(token), created_at=now,
                   expires_at=now + timedelta(days=days) if days else None, revoked=False)
    session.add(row)
    session.flush()
    return token, row


def user_for_api_token(session: Session, token: str, clock: Clock) -> User | None:
    # The user and its unit in the same statement: every API request asks for them (its actor's scope).
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))
                         .options(joinedload(ApiToken.user, innerjoin=True)
                                  .joinedload(User.organisation, innerjoin=True)))
    if row is None or row.revoked or (row.expires_at is not None and row.expires_at <= clock.now()):
        return None
    return row.user if row.user.active else None


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


# -- users of one's subtree, as administrators manage them ----------------------------------------------------


def user_in_scope(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not actor.sees_organisation(session, user.organisation_id):
        raise NotFound("user", str(user_id))
    return user


def add_user(session: Session, actor: Actor, clock: Clock, *, username: str, full_name: str, role: Role,
             organisation_id: str, password: str, email: str | None = None) -> User:
    """An administrator creates a user of their subtree."""
    actor.require(Role.admin, to="create users")
    if not actor.sees_organisation(session, organisation_id):
        raise NotFound("organisation", organisation_id)
    user = create_user(session, username=username, full_name=full_name, role=role, organisation_id=organisation_id,
                       password=password, clock=clock)
    return set_notice_address(user, email, None)


def change_user(session: Session, actor: Actor, user_id: int, *, full_name: str | None = None,
                role: Role | None = None, active: bool | None = None, email: str | None = None,
                notice_digest: bool | None = None) -> User:
    """An administrator changes a user of their subtree (never deactivating themselves or dropping their own admin
    role: some admin must remain); None leaves a field as it is."""
    actor.require(Role.admin, to="change users")
    user = user_in_scope(session, actor, user_id)
    if user.id == actor.user.id and (active is False or (role and role is not Role.admin)):
        raise Conflict("you cannot deactivate yourself or drop your own admin role", "ask another admin")
    for field, value in (("full_name", full_name), ("role", role), ("active", active)):
        if value is not None:
            setattr(user, field, value)
    return set_notice_address(user, email, notice_digest)


# An e-mail address as far as it can be checked without sending to it; the API's models use the same pattern.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def set_notice_address(user: User, email: str | None, notice_digest: bool | None) -> User:
    """Where and how a user's notices are e-mailed (scheduler/outage_notices.py): "" clears the address (notices
    then stay in the app), None leaves a field as it is."""
    if email is not None:
        email = email.strip()
        if email and (len(email) > 254 or not re.match(EMAIL_PATTERN, email)):
            raise Invalid(f"{email!r} is not an e-mail address", "give one like ten@phuong.hanoi.gov.vn")
        user.email = email or None
    if notice_digest is not None:
        user.notice_digest = notice_digest
    return user
