"""Ed25519 signatures over canonical JSON: the server signs plans and commands, players verify them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from signage.private_files import narrow_if_present, private_directory, write_private
from signage.protocol import SignedEnvelope, canonical_json

PRIVATE_KEY_FILE = "signing-key.pem"


class SignatureRefused(ValueError):
    """An envelope that is unsigned, signed by another key, or whose payload was changed."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The raw public key in base64: what a player's config file carries."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise ValueError(f"not an Ed25519 public key in base64 ({exc}); copy it from the server's player "
                         "config again") from None


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Signer:
        """The server's key under the data directory (mode 0700), made at first start (mode 0600); a key or
        directory found readable by others is narrowed to those modes, with a warning."""
        private_directory(data_dir)
        path = data_dir / PRIVATE_KEY_FILE
        if path.exists():
            narrow_if_present(path)
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            key = load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 key; move it away to have a new one made")
            return cls(key)
        key = Ed25519PrivateKey.generate()
        write_private(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), replace=False)
        return cls(key)

    def sign(self, payload: dict[str, Any]) -> SignedEnvelope:
        signature = self.private_key.sign(canonical_json(payload))
        return SignedEnvelope(payload=payload, alg="ed25519", key_id=self.key_id,
                              sig=base64.b64encode(signature).decode())

    def envelope_json(self, payload_json: bytes) -> bytes:
        """Sign a payload already in canonical JSON (a plan from the planner) without parsing it again."""
        signature = base64.b64encode(self.private_key.sign(payload_json)).decode()
        return (b'{"alg":"ed25519","key_id":"' + self.key_id.encode() + b'","payload":' + payload_json
                + b',"sig":"' + signature.encode() + b'"}')


class Verifier:
    """Checks envelopes against the public keys a player trusts (more than one while keys rotate)."""

    def __init__(self, public_keys: list[Ed25519PublicKey]) -> None:
        self.keys = {key_id_of(k): k for k in public_keys}

    def verify(self, envelope: SignedEnvelope) -> dict[str, Any]:
        key = self.keys.get(envelope.key_id)
        if key is None:
            raise SignatureRefused(f"signed with key {envelope.key_id}, which this player does not trust")
        try:
            key.verify(base64.b64decode(envelope.sig, validate=True), canonical_json(envelope.payload))
        except (InvalidSignature, ValueError):
            raise SignatureRefused("the signature does not match the payload") from None
        return envelope.payload
