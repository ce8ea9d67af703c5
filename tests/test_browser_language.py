"""Issue 18's acceptance in a real Chromium: every page, as each role, speaks one language, and so do the
exports. In Vietnamese no English UI word and no raw code (a site kind, a status) shows; in English no Vietnamese
UI text is left untranslated. The crawl follows the pages' own links from the home page, one page of each kind, on
the known day of proof-of-play (tests/test_ledger.py), so the reports have figures to show. The Vietnamese exports
(the compliance PDF and XLSX, the proof-of-play log's PDF) are checked against the same word list."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import openpyxl
import pytest
from babel.messages.pofile import read_po

from campaigns.kinds import CampaignStatus, OrgKind, SiteKind, WindowPolicy
from scheduler.reports.build import build_report
from scheduler.reports.exports import write_pdf, write_xlsx
from scheduler.web.i18n import catalogue_file
from tests.browser import LiveServer, shot, sign_in_as
from tests.test_compliance_report import closed, hadong  # noqa: F401
from tests.test_ledger import HANOI, ledger  # noqa: F401

# One user of each role (tests/conftest.py STAFF), from the city down to a ward.
ROLES = ["city-admin", "city-manager", "hadong-head", "phula-staff"]
# Words of the UI's English that a Vietnamese page must not show (matched as whole words, any case).
ENGLISH_WORDS = {
    "campaign", "campaigns", "screen", "screens", "site", "sites", "unit", "units", "report", "reports",
    "status", "state", "kind", "name", "total", "plays", "play", "played", "delivered", "required", "compliance",
    "never", "online", "offline", "peak", "operating", "hours", "today", "yesterday", "day", "days", "file",
    "imported", "from", "the", "and", "of", "with", "for", "by", "none", "all",
    "submit", "approve", "reject", "save", "cancel", "delete", "edit", "upload", "download", "search", "filter",
    "sign", "next", "previous", "back", "more", "new", "add", "remove", "show", "hide", "alert", "alerts",
    "urgent", "info", "pending", "approved", "rejected", "stopped", "draft", "submitted", "scheduled", "active",
    "ended", "archived", "missed", "failed", "completed", "interrupted", "makegood", "makegoods", "spot", "spots",
    "target", "met", "short", "near", "page", "rows", "export", "period", "generated", "timezone",
}
# The codes behind labels: a page shows the label, never the code.
CODES = ({kind.value for kind in SiteKind} | {kind.value for kind in OrgKind} | {s.value for s in CampaignStatus}
         | {p.value for p in WindowPolicy} | {"never", "in_progress", "no_plan", "media_missing"})
# Links the crawl does not follow: files to download, the other language, signing out.
SKIPPED = re.compile(r"^/(static|api|logout|media-files)/|[?&](format|lang)=|\.(pdf|csv|xlsx|mp4|png|jpg)$")


def tokens(text: str) -> set[str]:
    """The words a reader sees, leaving out ids, file names and numbers (a token with a digit, '-', '_', '.',
    '/', '@' or ':' inside is data, not UI)."""
    found = re.findall(r"[^\s,;()\[\]{}«»\"'“”‘’·|…!?]+", text)
    return {token.strip(".:") for token in found if not re.search(r"[\d_/@]|\w[-.:]\w", token)}


def leaks(text: str) -> list[str]:
    """English UI words (in any case) and codes (as the code is written: "mall", not the "Mall" of a name)."""
    seen = tokens(text)
    return sorted({token.lower() for token in seen} & ENGLISH_WORDS | seen & CODES)


def page_kind(url: str) -> tuple:
    """Pages of one kind: the same path shape (an id or slug is any segment after the first) and the same query
    names, with the values that pick another view (a report's kind, a filter)."""
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    shape = "/".join(segments[:1] + ["*" for _ in segments[1:]])
    query = tuple(sorted((name, value if name in ("kind", "phase", "status", "step") else "*")
                         for name, value in parse_qsl(parts.query)))
    return shape, query


# Each text node of the page (scripts and styles left out), as a reader sees them one by one.
TEXT_NODES = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), texts = [document.title];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    if (text && !node.parentElement.closest("script, style")) texts.push(text);
  }
  return texts;
}"""


def crawl(page, server: LiveServer, username: str, language: str) -> dict[str, str]:
    """path -> the text of each kind of page reachable from the home page for `username` in `language`, its text
    nodes one a line."""
    sign_in_as(page, server, username)
    page.wait_for_selector("#who")  # signed in
    page.goto(server.url(f"/campaigns?lang={language}"))  # remembered in a cookie
    queue, seen_kinds, texts = ["/"], set(), {}
    while queue:
        path = queue.pop(0)
        kind = page_kind(path)
        if kind in seen_kinds:
            continue
        seen_kinds.add(kind)
        answer = page.goto(server.url(path))
        assert answer is not None and answer.status < 500, f"{path} answers {answer and answer.status}"
        if answer.status >= 400 or "text/html" not in answer.headers.get("content-type", ""):
            continue
        # The signed-in user's name (the fixtures' "City Admin") is data, not UI.
        who = page.locator("#who").inner_text() if page.locator("#who").count() else ""
        texts[path] = "\n".join(page.evaluate(TEXT_NODES)).replace(who, "")
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
            if href.startswith("?"):
                href = urlsplit(path).path + href
            if href.startswith("/") and not SKIPPED.search(href):
                queue.append(href.split("#")[0])
    assert len(texts) >= 5, f"the crawl found only {sorted(texts)}"
    return texts


def pages_where(texts: dict[str, str], finding) -> dict[str, list[str]]:
    """path -> what `finding` finds in its text, for the pages where it finds something."""
    return {path: found for path, text in texts.items() if (found := finding(text))}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("username", ROLES)
def test_every_page_in_vietnamese_shows_no_english_and_no_codes(live_server, browser_page, closed,  # noqa: F811
                                                               username):
    found = pages_where(crawl(browser_page, live_server, username, "vi"), leaks)
    assert not found, f"English words or codes on Vietnamese pages as {username}: {found}"


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def xlsx_text(path) -> str:
    book = openpyxl.load_workbook(path, read_only=True)
    return "\n".join(str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_vietnamese_exports_show_no_english_and_no_codes(closed, tmp_path):  # noqa: F811
    # The reports people hand in, in Vietnamese: the compliance PDF and XLSX, and the proof-of-play log's PDF, whose
    # rows hold a make-good, a playback error and a spot missed for want of its media (tests/test_ledger.py).
    now = datetime(2024, 8, 21, tzinfo=HANOI)
    with closed.sessions() as session:
        compliance = build_report(session, "compliance", hadong(), now, "vi", "Asia/Ho_Chi_Minh")
        write_pdf(compliance, tmp_path / "compliance.pdf")
        compliance = build_report(session, "compliance", hadong(), now, "vi", "Asia/Ho_Chi_Minh")
        write_xlsx(compliance, tmp_path / "compliance.xlsx")
        write_pdf(build_report(session, "pop", hadong(None), now, "vi", "Asia/Ho_Chi_Minh"), tmp_path / "pop.pdf")
    texts = {"compliance.pdf": pdf_text(tmp_path / "compliance.pdf"),
             "compliance.xlsx": xlsx_text(tmp_path / "compliance.xlsx"), "pop.pdf": pdf_text(tmp_path / "pop.pdf")}
    assert {"Lỗi", "bù"} <= tokens(texts["pop.pdf"])  # the labels (words may wrap in their cells)
    assert not pages_where(texts, leaks), f"English words or codes in Vietnamese exports: {pages_where(texts, leaks)}"


def untranslated_vietnamese() -> set[str]:
    """The catalogue's Vietnamese texts that English says otherwise: on an English page, one of them is a text
    left untranslated. Short ones ("Loa") may be data as well, and are left out."""
    with catalogue_file("vi", ".po").open("rb") as file:
        vi = {m.id: m.string for m in read_po(file) if m.id}
    with catalogue_file("en", ".po").open("rb") as file:
        en = {m.id: m.string for m in read_po(file) if m.id}
    return {text.strip(" :·←→") for key, text in vi.items() if text != en.get(key) and "{" not in text
            and len(text) >= 6}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("username", ROLES)
def test_every_page_in_english_leaves_no_vietnamese_ui_text(live_server, browser_page, closed,  # noqa: F811
                                                           username):
    vietnamese = untranslated_vietnamese()
    # A whole text node, not a part of one: "Bệnh viện" inside a site's name "Bệnh viện Hà Đông" is data.
    found = pages_where(crawl(browser_page, live_server, username, "en"),
                        lambda text: sorted({line.strip(" :·←→") for line in text.splitlines()} & vietnamese))
    assert not found, f"Vietnamese UI text on English pages as {username}: {found}"


# The pages a manager hands in or acts on, as a Hà Đông head sees them on a laptop's screen.
SIGNED_PAGES = {
    "compliance-report": "/reports?kind=compliance&organisation_id=hn-hadong&campaign_id=ihanoi-2024"
                         "&from=2024-08-20&to=2024-08-20",
    "proof-of-play-log": "/reports?kind=pop&organisation_id=hn-hadong&campaign_id=ihanoi-2024"
                         "&from=2024-08-20&to=2024-08-20",
    "screen-health": "/reports?kind=health&organisation_id=hn-hadong&from=2024-08-20&to=2024-08-20",
    "campaign": "/campaigns/ihanoi-2024",
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_pages_a_manager_signs_read_in_vietnamese_at_1366_by_900(live_server, browser_page,
                                                                     closed):  # noqa: F811
    """Screenshots for a reader under tests/artifacts/: the compliance report, the proof-of-play log, screen
    health and a campaign page, each with its figures and in Vietnamese alone."""
    browser_page.set_viewport_size({"width": 1366, "height": 900})
    sign_in_as(browser_page, live_server, "hadong-head")
    browser_page.wait_for_selector("#who")
    for name, path in SIGNED_PAGES.items():
        answer = browser_page.goto(live_server.url(path + ("&" if "?" in path else "?") + "lang=vi"))
        assert answer is not None and answer.status == 200, f"{name}: {answer and answer.status}"
        text = "\n".join(browser_page.evaluate(TEXT_NODES)).replace(browser_page.locator("#who").inner_text(), "")
        assert "ihanoi" in text.lower() or "Hà Đông" in text, f"{name} shows neither the campaign nor the unit"
        assert not leaks(text), f"{name}: {leaks(text)}"
        shot(browser_page, name)
