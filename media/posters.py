"""Posters made from a template: a title, a text, a QR code for a link, the hotline and the unit's name, drawn
to a PNG of a screen's size (landscape or portrait) with Pillow, the QR code by segno.

Pure apart from reading the fonts: Debian's fonts-dejavu-core (DejaVu Sans), found under /usr/share/fonts, which
draws every Vietnamese letter. Text a font cannot draw is refused rather than drawn as boxes. The QR code keeps
whole-pixel modules and a quiet zone of four modules on white, and is at least a third of the poster's shorter
side, so a phone reads it from a screen of any size (the tests decode every size with zbarimg).
"""

from __future__ import annotations

import io
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import segno
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont
from pydantic import ConfigDict, Field, field_validator

from campaigns.workflow import checked
from signage.errors import Invalid
from signage.text import NfcModel

FONT_DIRS = (Path("/usr/share/fonts"),)
REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
MAX_TITLE, MAX_TEXT, MAX_LINK, MAX_HOTLINE, MAX_UNIT = 120, 600, 300, 60, 255
# Screens from a small outdoor LED to 8K; the pixel bound keeps one render within memory (8K is 33 Mpx).
MIN_SIDE, MAX_SIDE, MAX_PIXELS = 320, 8192, 40_000_000
QUIET_ZONE = 4  # modules of white around the code, as ISO/IEC 18004 asks

BACKGROUND = (200, 16, 46)
WHITE, BLACK, YELLOW = (255, 255, 255), (0, 0, 0), (255, 222, 0)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class FontMissing(RuntimeError):
    """The server lacks the fonts posters are drawn with: a matter of installation, not of the poster."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the font {name} is not under {', '.join(map(str, FONT_DIRS))}: posters cannot be drawn; "
                         "install Debian's fonts-dejavu-core (scripts/setup.sh does)")


def _one_line(value: str, what: str) -> str:
    value = value.strip()
    if _CONTROL.search(value):
        raise Invalid(f"the {what} contains a line break or a control character", f"write the {what} on one line")
    return value


class PosterTemplate(NfcModel):
    """What staff type into the poster's template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    text: str = Field(default="", max_length=MAX_TEXT)
    link: str = Field(min_length=1, max_length=MAX_LINK)
    hotline: str = Field(default="", max_length=MAX_HOTLINE)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = _one_line(value, "title")
        if not value:
            raise Invalid("the title is empty", "write the poster's title, e.g. 'Cài đặt ứng dụng iHanoi'")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = value.replace("\r\n", "\n").strip()
        if _CONTROL.search(value.replace("\n", "")):
            raise Invalid("the text contains a control character", "write plain text; line breaks are kept")
        return value

    @field_validator("hotline")
    @classmethod
    def _hotline(cls, value: str) -> str:
        return _one_line(value, "hotline")

    @field_validator("link")
    @classmethod
    def _link(cls, value: str) -> str:
        value = value.strip()
        fix = "give the full address of a web page, starting with https:// (e.g. the app's install page)"
        if not value.isascii() or re.search(r"[\s\x00-\x1f\x7f]", value):
            raise Invalid("the link contains spaces, control characters or letters outside ASCII",
                          f"{fix}; percent-encode what is not ASCII")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise Invalid(f"the link {value[:40]!r} is not an http(s) address", fix)
        return value


def checked_template(data: dict[str, object]) -> PosterTemplate:
    """A template from a form or a file, all its problems as one Invalid."""
    return checked(PosterTemplate, data)


def check_size(width: int, height: int) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise Invalid(f"a poster of {width}x{height} pixels is outside what is drawn",
                      f"give each side from {MIN_SIDE} to {MAX_SIDE} pixels, at most {MAX_PIXELS:,} pixels in all")


# -- fonts --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def font_file(name: str) -> Path:
    for directory in FONT_DIRS:
        found = sorted(directory.rglob(name)) if directory.is_dir() else []
        if found:
            return found[0]
    raise FontMissing(name)


@lru_cache(maxsize=4)
def font_characters(name: str) -> frozenset[int]:
    """The code points the font draws (its cmap)."""
    with TTFont(font_file(name), lazy=True) as font:
        return frozenset(font.getBestCmap())


def check_drawable(template: PosterTemplate, unit_name: str) -> None:
    """Refuses text the fonts have no glyphs for (emoji, other scripts), which would be drawn as boxes."""
    text = "".join((template.title, template.text, template.link, template.hotline, unit_name))
    covered = font_characters(REGULAR) & font_characters(BOLD)
    missing = sorted({ch for ch in text if ch != "\n" and ord(ch) not in covered})
    if missing:
        shown = " ".join(f"{ch} (U+{ord(ch):04X})" for ch in missing[:8])
        raise Invalid(f"the poster's font cannot draw {shown}",
                      "use Vietnamese or English letters, digits and common punctuation")


@lru_cache(maxsize=128)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_file(name)), size)


# -- layout -------------------------------------------------------------------------------------------------


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Lines within `width` pixels: at spaces, and inside a word only when the word alone is wider."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in word:
                if line and draw.textlength(line + ch, font=font) > width:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line)
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return round((ascent + descent) * 1.12)


def _fit(draw: ImageDraw.ImageDraw, text: str, name: str, width: int, height: int,
         largest: int) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest size (down to a legible floor) at which the wrapped text fits the box; below the floor the
    lines that do not fit end with an ellipsis."""
    floor = max(10, largest // 6)
    size = largest
    while True:
        font = _font(name, size)
        lines = _wrap(draw, text, font, width)
        if len(lines) * _line_height(font) <= height:
            return font, lines
        if size <= floor:
            break
        size = max(floor, int(size * 0.92))
    keep = max(1, height // _line_height(font))
    lines = lines[:keep]
    last = lines[-1]
    while last and draw.textlength(last + "…", font=font) > width:
        last = last[:-1]
    lines[-1] = last.rstrip() + "…"
    return font, lines


def _draw_block(draw: ImageDraw.ImageDraw, text: str, name: str, box: tuple[int, int, int, int], largest: int,
                fill: tuple[int, int, int], *, centre: bool = False, middle: bool = False) -> None:
    left, top, width, height = box
    if not text or width <= 0 or height <= 0:
        return
    font, lines = _fit(draw, text, name, width, height, largest)
    step = _line_height(font)
    y = top + (height - step * len(lines)) // 2 if middle else top
    for line in lines:
        x = left + (width - draw.textlength(line, font=font)) / 2 if centre else left
        draw.text((x, y), line, font=font, fill=fill)
        y += step


def _qr_image(link: str, side: int) -> Image.Image:
    """The code with its quiet zone, in whole-pixel modules, at most `side` pixels square."""
    code = segno.make(link, error="m", micro=False)
    rows = [list(row) for row in code.matrix_iter(scale=1, border=QUIET_ZONE)]
    modules = len(rows)
    scale = side // modules
    if scale < 2:
        raise Invalid("the link is too long for a QR code a screen of this size shows legibly",
                      "use a shorter link (e.g. the install page's short address)")
    image = Image.new("L", (modules, modules), 255)
    image.putdata([0 if dark else 255 for row in rows for dark in row])
    return image.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)


def render_poster(template: PosterTemplate, unit_name: str, width: int, height: int) -> bytes:
    """The poster as PNG bytes of `width`x`height` pixels: side by side on a landscape screen, stacked on a
    portrait one."""
    check_size(width, height)
    unit_name = unicodedata.normalize("NFC", unit_name).strip()[:MAX_UNIT]
    check_drawable(template, unit_name)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    short = min(width, height)
    margin = round(short * 0.05)
    if width >= height:
        _landscape(draw, image, template, unit_name, width, height, margin)
    else:
        _portrait(draw, image, template, unit_name, width, height, margin)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _qr_panel(image: Image.Image, draw: ImageDraw.ImageDraw, link: str, left: int, top: int, side: int) -> int:
    """The code centred in a white square at (left, top); returns the square's side."""
    code = _qr_image(link, side)
    draw.rectangle((left, top, left + side - 1, top + side - 1), fill=WHITE)
    offset = (side - code.width) // 2
    image.paste(code, (left + offset, top + offset))
    return side


def _landscape(draw, image, template: PosterTemplate, unit_name: str, width: int, height: int, margin: int) -> None:
    inner = height - 2 * margin
    side = min(round(inner * 0.8), round(width * 0.42))
    link_band = round(inner * 0.08)
    qr_left = width - margin - side
    qr_top = margin + max(0, (inner - side - link_band) // 2)
    _qr_panel(image, draw, template.link, qr_left, qr_top, side)
    _draw_block(draw, template.link, REGULAR, (qr_left, qr_top + side + link_band // 6, side, link_band),
                round(link_band * 0.55), WHITE, centre=True)
    column = qr_left - 2 * margin
    boxes = {"unit": 0.09, "title": 0.33, "text": 0.40, "hotline": 0.14}
    y = margin
    gap = round(inner * 0.01)
    for key, share in boxes.items():
        box_height = round(inner * share) - gap
        _draw_landscape_part(draw, template, unit_name, key, (margin, y, column, box_height))
        y += box_height + gap


def _draw_landscape_part(draw, template: PosterTemplate, unit_name: str, key: str, box) -> None:
    height = box[3]
    if key == "unit":
        _draw_block(draw, unit_name.upper(), BOLD, box, round(height * 0.7), WHITE)
    elif key == "title":
        _draw_block(draw, template.title, BOLD, box, round(height * 0.45), WHITE, middle=True)
    elif key == "text":
        _draw_block(draw, template.text, REGULAR, box, round(height * 0.18), WHITE)
    else:
        _draw_block(draw, template.hotline, BOLD, box, round(height * 0.55), YELLOW, middle=True)


def _portrait(draw, image, template: PosterTemplate, unit_name: str, width: int, height: int, margin: int) -> None:
    inner_w, inner_h = width - 2 * margin, height - 2 * margin
    side = min(inner_w, round(inner_h * 0.42))
    layout = [("unit", 0.05), ("title", 0.17), ("text", 0.18), ("qr", side / inner_h), ("link", 0.04),
              ("hotline", 0.09)]
    free = inner_h - sum(round(inner_h * share) for _, share in layout)
    gap = max(0, free // (len(layout) - 1))
    y = margin
    for key, share in layout:
        box_height = round(inner_h * share)
        box = (margin, y, inner_w, box_height)
        if key == "unit":
            _draw_block(draw, unit_name.upper(), BOLD, box, round(box_height * 0.7), WHITE, centre=True)
        elif key == "title":
            _draw_block(draw, template.title, BOLD, box, round(box_height * 0.4), WHITE, centre=True, middle=True)
        elif key == "text":
            _draw_block(draw, template.text, REGULAR, box, round(box_height * 0.2), WHITE, centre=True)
        elif key == "qr":
            _qr_panel(image, draw, template.link, margin + (inner_w - side) // 2, y, side)
        elif key == "link":
            _draw_block(draw, template.link, REGULAR, box, round(box_height * 0.6), WHITE, centre=True)
        else:
            _draw_block(draw, template.hotline, BOLD, box, round(box_height * 0.5), YELLOW, centre=True, middle=True)
        y += box_height + gap


__all__ = ["FontMissing", "PosterTemplate", "check_drawable", "check_size", "checked_template", "font_file",
           "render_poster"]
