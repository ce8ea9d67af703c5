"""The plan a player holds: a signed plan verified for this player, and kept on disk (`<data_dir>/plan.json`, the
envelope as received) so that a restart plays on offline."""

from __future__ import annotations

from pathlib import Path

from player.files import replace_atomically
from signage.protocol import Plan, SignedEnvelope
from signage.signing import Verifier


def verified_plan(payload: bytes, verifier: Verifier, player_id: str) -> Plan:
    """The plan in a signed envelope, once its signature, its player and its version check out; raises ValueError
    (pydantic's ValidationError, SignatureRefused) saying why it is refused."""
    plan = Plan.model_validate(verifier.verify(SignedEnvelope.model_validate_json(payload)))
    if plan.player_id != player_id:
        raise ValueError(f"the plan is for {plan.player_id}, not this player")
    if plan.computed_version() != plan.version:
        raise ValueError("the plan's version does not match its body")
    return plan


def saved_plan(data_dir: Path) -> bytes | None:
    """The envelope of the plan last taken, or None when there is none."""
    path = plan_file(data_dir)
    return path.read_bytes() if path.exists() else None


def save_plan(data_dir: Path, payload: bytes) -> None:
    replace_atomically(plan_file(data_dir), payload)


def plan_file(data_dir: Path) -> Path:
    return data_dir / "plan.json"


__all__ = ["plan_file", "save_plan", "saved_plan", "verified_plan"]
