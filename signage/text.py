"""Text in one Unicode form: NFC, everywhere it comes in.

Vietnamese can be written composed ("ộ", one code point: what keyboards and browsers send) or decomposed ("o" and
two combining marks: what some macOS file names and copy-pastes carry). The two look the same and compare unequal,
so a name stored decomposed was not found by a search typed composed. Every boundary turns text into NFC: the HTTP
bodies and browser forms, the campaign and fleet files, the MQTT wire models (all through `NfcModel`, or `nfc_deep`
for a form), and the searches their queries (`search_text`).
"""

from __future__ import annotations

import unicodedata
from typing import Any, ClassVar

from pydantic import BaseModel, field_validator


def nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)  # ids and most wire text: ASCII, as is


def nfc_deep(value: Any) -> Any:
    """Strings in NFC, inside lists, tuples and dicts (keys too); anything else as it is."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list | tuple):
        return type(value)(nfc_deep(item) for item in value)
    if isinstance(value, dict):
        return {nfc_deep(key): nfc_deep(item) for key, item in value.items()}
    return value


def search_text(query: str | None) -> str:
    """A search as typed, to be matched against stored text: NFC, without surrounding spaces."""
    return nfc(query or "").strip()


class NfcModel(BaseModel):
    """A model whose text comes in as NFC, in every field, nested lists and dicts included: the base of what is
    read from people, files and the wire. `nfc_input = False` keeps a model's input as it came (a signed
    envelope's payload is verified over the bytes that were signed)."""

    nfc_input: ClassVar[bool] = True

    @field_validator("*", mode="before")
    @classmethod
    def _nfc(cls, value: Any) -> Any:
        return nfc_deep(value) if cls.nfc_input else value


__all__ = ["NfcModel", "nfc", "nfc_deep", "search_text"]
