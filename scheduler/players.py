"""Player provisioning: credentials made, stored as hashes, checked, revoked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Screen
from scheduler.models import PlayerCredential
from signage.config import Settings
from signage.player_config import PlayerConfig
from signage.signing import Signer, public_key_text

BROKER_HASH_ITERATIONS = 101  # Mosquitto's own default; the secrets are random, so iterations add little


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mosquitto_hash(secret: str, salt: bytes | None = None, iterations: int = BROKER_HASH_ITERATIONS) -> str:
    """A password hash in Mosquitto's password-file format ($7$: PBKDF2-HMAC-SHA512)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class UnknownScreen(LookupError):
    pass


def register_player(session: Session, screen_id: str, settings: Settings, signer: Signer, server_url: str,
                    now: datetime) -> PlayerConfig:
    """Make (or replace) the screen's player credentials; returns the player's config, secret included.

    The secret is shown this once: the server keeps only its hashes.
    """
    if session.get(Screen, screen_id) is None:
        raise UnknownScreen(f"no screen has the id {screen_id!r}; import it with the fleet file first")
    secret = new_secret()
    credential = session.get(PlayerCredential, screen_id)
    if credential is None:
        credential = PlayerCredential(player_id=screen_id, created_at=now)
        session.add(credential)
    credential.secret_sha256 = secret_sha256(secret)
    credential.broker_hash = mosquitto_hash(secret)
    credential.created_at = now
    credential.revoked_at = None
    session.flush()
    return PlayerConfig(player_id=screen_id, broker_host=settings.broker_host, broker_port=settings.broker_port,
                        username=screen_id, password=secret, server_url=server_url,
                        public_keys=[public_key_text(signer.public_key)])


def revoke_player(session: Session, screen_id: str, now: datetime) -> bool:
    credential = session.get(PlayerCredential, screen_id)
    if credential is None or credential.revoked_at is not None:
        return False
    credential.revoked_at = now
    session.flush()
    return True


def active_credential(session: Session, screen_id: str) -> PlayerCredential | None:
    """The screen's player's credentials while they work (not revoked); None when no PC plays it."""
    credential = session.get(PlayerCredential, screen_id)
    return credential if credential is not None and credential.revoked_at is None else None


def active_credentials(session: Session) -> list[PlayerCredential]:
    return list(session.scalars(select(PlayerCredential).where(PlayerCredential.revoked_at.is_(None))
                                .order_by(PlayerCredential.player_id)))


def player_secret_matches(session: Session, player_id: str, secret: str) -> bool:
    credential = session.get(PlayerCredential, player_id)
    if credential is None or credential.revoked_at is not None:
        return False
    return hmac.compare_digest(credential.secret_sha256, secret_sha256(secret))
