"""Request and response bodies that more than one resource's routes use (campaigns and alerts target screens
the same way, and are reviewed the same way)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from campaigns.workflow import MAX_NOTE
from signage.text import NfcModel


class TargetsBody(NfcModel):
    """Screens hit: those of the organisation subtrees (of the owner, when only site kinds are given) of the listed
    site kinds (any when none), plus the listed sites, groups and screens; all within the owner's subtree."""

    model_config = ConfigDict(extra="forbid")
    organisations: list[str] = Field(default_factory=list, max_length=500)
    site_kinds: list[str] = Field(default_factory=list, max_length=50)
    sites: list[str] = Field(default_factory=list, max_length=5000)
    screens: list[str] = Field(default_factory=list, max_length=50000)
    groups: list[str] = Field(default_factory=list, max_length=500)


class ReviewBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=MAX_NOTE)


class TargetCountOut(BaseModel):
    organisation_id: str
    screens: int
    sites: int
    speakers: int
