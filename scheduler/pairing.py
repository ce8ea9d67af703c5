"""Pairing a screen PC with a code: the PC asks for a code, shows it on its screen, staff type it on the screen's
page (or through the API), and the PC fetches its player's config once.

What the server holds of an unclaimed request lets nobody in: the short code (which anyone in front of the screen
can read) and the sha256 of a random secret the PC made and polls with. A claim only ties the request to a screen;
the player's credentials are made (scheduler/players.py's `register_player`, as `signage player register` does)
when the PC holding the secret fetches them, once; so no secret is ever stored here, and only the requesting PC
can fetch it. Codes expire after CODE_TTL and serve once.

Wrong codes are throttled per client address with the sign-ins' own table (campaigns/accounts.py's
`login_failures`, under a name no user can have): after WRONG_CODES_ALLOWED wrong codes within CODE_TTL, that
address waits until the oldest of them is CODE_TTL old. The claim is audited (`screen.paired`), as is the
delivery (`screen.player_config_fetched`, under the claimer's name).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from campaigns import fleet_view as fleet
from campaigns.access import Actor
from campaigns.accounts import CLIENT_LENGTH
from campaigns.audit import record_change
from campaigns.models import AuditEntry, LoginFailure, Screen
from scheduler.models import PairingRequest
from scheduler.players import active_credential, register_player, secret_sha256
from signage.clock import Clock
from signage.config import Settings
from signage.errors import Conflict, Invalid, NotFound
from signage.player_config import PlayerConfig
from signage.signing import Signer

CODE_TTL = timedelta(minutes=15)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen across a room
CODE_LENGTH = 6
WRONG_CODES_ALLOWED = 20
OPEN_REQUESTS_ALLOWED = 10  # unclaimed, unexpired requests from one address: a PC needs one at a time
THROTTLE_NAME = "#pairing"  # the login_failures rows of wrong codes: '#' is in no user name (check_username)
MIN_SECRET_LENGTH = 32


class PairingThrottled(Exception):
    def __init__(self, retry_after: timedelta, what: str = "too many wrong pairing codes from this address") -> None:
        self.retry_after_seconds = max(1, math.ceil(retry_after.total_seconds()))
        super().__init__(f"{what}; try again in {self.retry_after_seconds} s")


class PairingExpired(Exception):
    """The request's code expired before a claim: the PC asks for a new one."""


class PairingAlreadyFetched(Exception):
    """The config was fetched once already; it is never served twice."""


class CodeRefused(Invalid):
    """A code that is `wrong` (no PC shows it), `used` already or `expired`."""

    def __init__(self, kind: str, problem: str, fix: str) -> None:
        super().__init__(problem, fix)
        self.kind = kind


class ReplaceUnconfirmed(Conflict):
    """The screen has a player already: a new PC's credentials would replace it (the old PC stops working), which
    the claimer confirms with `replace`."""

    def __init__(self, screen_id: str, since: datetime) -> None:
        problem = (f"the screen {screen_id!r} has a player already (paired {since:%Y-%m-%d %H:%M} UTC): pairing a "
                   "new PC replaces its credentials and the old PC stops playing")
        fix = "send replace: true to replace it, or pair the new PC with another screen"
        super().__init__(problem, fix, errors=[{"field": "replace", "problem": problem, "fix": fix}])


@dataclass(frozen=True)
class Waiting:
    expires_at: datetime


def normalise_code(code: str) -> str:
    """What staff typed as the code: case, spaces and dashes do not matter ('abc-def' is 'ABCDEF')."""
    return "".join(code.split()).replace("-", "").upper()


def shown_code(code: str) -> str:
    """The code as the screen shows it: two groups of three."""
    return f"{code[:3]}-{code[3:]}"


def request_pairing(session: Session, clock: Clock, secret: str, client: str | None) -> PairingRequest:
    """A new code for the PC that holds `secret` (only its hash is kept); expired unclaimed requests are dropped.
    PairingThrottled when `client` holds OPEN_REQUESTS_ALLOWED open requests already."""
    now = clock.now()
    session.execute(delete(PairingRequest).where(PairingRequest.expires_at < now,
                                                 PairingRequest.claimed_at.is_(None)))
    client = (client or "")[:CLIENT_LENGTH] or None
    open_from_client = session.scalars(select(PairingRequest.expires_at).where(
        PairingRequest.client.is_(None) if client is None else PairingRequest.client == client,
        PairingRequest.claimed_at.is_(None), PairingRequest.expires_at >= now)
        .order_by(PairingRequest.expires_at)).all()
    if len(open_from_client) >= OPEN_REQUESTS_ALLOWED:
        raise PairingThrottled(open_from_client[0] - now, "too many pairing codes asked for from this address")
    digest = secret_sha256(secret)
    if session.scalar(select(PairingRequest.id).where(PairingRequest.secret_sha256 == digest)) is not None:
        raise Conflict("this pairing secret was used already", "make a new random secret for each request")
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if _open_request(session, code, now) is None:
            break
    request = PairingRequest(code=code, secret_sha256=digest, client=client,
                             requested_at=now, expires_at=now + CODE_TTL)
    session.add(request)
    session.flush()
    return request


def _open_request(session: Session, code: str, now: datetime) -> PairingRequest | None:
    return session.scalar(select(PairingRequest).where(PairingRequest.code == code,
                                                       PairingRequest.expires_at >= now)
                          .order_by(PairingRequest.id.desc()).limit(1))


def claim_code(session: Session, actor: Actor, clock: Clock, screen_id: str, code: str,
               client: str | None, replace: bool = False) -> PairingRequest:
    """Pair the screen with the PC showing `code`, audited, in the caller's transaction (which the caller commits
    even when this raises: a wrong code is counted). NotFound for a screen outside the actor's subtree,
    NotAllowed for a role that may not operate screens, Conflict for a retired screen, ReplaceUnconfirmed for a
    screen that has a player already unless `replace` (the new PC's credentials replace the old one's),
    PairingThrottled after too many wrong codes from `client`, CodeRefused for a code that is wrong, expired or
    used already."""
    screen = fleet.screen_in_scope(session, actor, screen_id)
    fleet.require_screen_operator(actor)
    if screen.retired_at is not None:
        raise Conflict(f"the screen {screen.id!r} is retired: it plays nothing and no PC can be paired with it",
                       "pair the PC with a screen in use, or add a new screen for it")
    held = active_credential(session, screen.id)
    if held is not None and not replace:
        raise ReplaceUnconfirmed(screen.id, held.created_at)
    now = clock.now()
    client = (client or "")[:CLIENT_LENGTH] or None
    _throttle(session, client, now)
    typed = normalise_code(code)
    found = session.scalar(select(PairingRequest).where(PairingRequest.code == typed)
                           .order_by(PairingRequest.id.desc()).limit(1)) if typed else None
    if found is None:
        session.add(LoginFailure(username=THROTTLE_NAME, client=client, at=now))
        raise CodeRefused("wrong", f"no screen PC shows the code {code.strip()!r}",
                      "type the code the screen shows now (6 letters and digits); if it shows none, restart "
                      "`signage player run` there")
    if found.claimed_at is not None:
        raise CodeRefused("used", f"the code {shown_code(found.code)} was used already",
                      "a code pairs one screen once: restart the player on the screen PC for a new code")
    if found.expires_at < now:
        raise CodeRefused("expired", f"the code {shown_code(found.code)} expired",
                      f"codes last {int(CODE_TTL.total_seconds() // 60)} minutes: the screen PC shows a new one "
                      "by itself; type that")
    found.screen_id, found.claimed_by, found.claimed_at = screen.id, actor.username, now
    record_change(session, actor, clock, action="screen.paired", entity_kind="screen", entity_id=screen.id,
                  organisation_id=screen.site.organisation_id,
                  after={"code": shown_code(found.code), "client": found.client,
                         "replaces_player_of": held.created_at.isoformat() if held is not None else None})
    session.flush()
    return found


def _throttle(session: Session, client: str | None, now: datetime) -> None:
    """PairingThrottled when `client` typed WRONG_CODES_ALLOWED wrong codes within CODE_TTL."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == THROTTLE_NAME,
                                               LoginFailure.at < now - CODE_TTL))
    same = (LoginFailure.username == THROTTLE_NAME,
            LoginFailure.client.is_(None) if client is None else LoginFailure.client == client)
    count, oldest = session.execute(select(func.count(), func.min(LoginFailure.at)).where(*same)).one()
    if count >= WRONG_CODES_ALLOWED:
        raise PairingThrottled(oldest + CODE_TTL - now)


def fetch_config(session: Session, clock: Clock, secret: str, settings: Settings, signer: Signer,
                 server_url: str) -> PlayerConfig | Waiting:
    """The player's config for the PC holding `secret`, made now and served once after a claim; Waiting before.
    NotFound for a secret no request has, PairingExpired past an unclaimed code's expiry, PairingAlreadyFetched
    the second time."""
    request = session.scalar(select(PairingRequest).where(PairingRequest.secret_sha256 == secret_sha256(secret)))
    if request is None:
        raise NotFound("pairing request", "for this secret", "ask for a new code (POST /players/pairing)")
    now = clock.now()
    if request.claimed_at is None:
        if request.expires_at < now:
            raise PairingExpired()
        return Waiting(request.expires_at)
    if request.delivered_at is not None or request.screen_id is None:
        raise PairingAlreadyFetched()
    request.delivered_at = now
    config = register_player(session, request.screen_id, settings, signer, server_url, now)
    # Audited under the claimer's name: the PC has no account of its own yet.
    screen = session.get(Screen, request.screen_id)
    session.add(AuditEntry(at=now, username=request.claimed_by or "", organisation_id=screen.site.organisation_id,
                           action="screen.player_config_fetched", entity_kind="screen", entity_id=request.screen_id,
                           after={"client": request.client}))
    session.flush()
    return config

