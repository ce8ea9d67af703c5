from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from campaigns.fleet_file import export_fleet, import_fleet
from campaigns.kinds import SiteKind
from campaigns.models import Organisation, Screen, Site
from campaigns.yaml_source import FileRejected
from signage.db import transaction
from tests.conftest import FLEET_FILE

TZ = "Asia/Ho_Chi_Minh"


def load(database, path: Path):
    with transaction(database.sessions) as session:
        return import_fleet(session, path, TZ)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_fleet_covers_every_site_kind_with_at_least_60_screens(database):
    load(database, FLEET_FILE)
    with database.sessions() as session:
        kinds = set(session.scalars(select(Site.kind)))
        screens = session.scalar(select(func.count()).select_from(Screen))
    assert kinds == set(SiteKind)
    assert screens >= 60


def test_importing_the_same_fleet_twice_leaves_the_same_database(database, snapshot):
    first = load(database, FLEET_FILE)
    after_first = snapshot()
    second = load(database, FLEET_FILE)
    assert first.changed and not second.changed
    assert snapshot() == after_first


def test_an_exported_fleet_imports_back_without_changes(database, tmp_path, snapshot):
    load(database, FLEET_FILE)
    before = snapshot()
    with database.sessions() as session:
        exported = write(tmp_path, export_fleet(session))
    assert not load(database, exported).changed
    assert snapshot() == before


def test_sites_without_a_timezone_get_the_default_and_keep_the_one_they_name(database, tmp_path):
    load(database, write(tmp_path, """
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - {id: s-hn, name: A, kind: office, organisation: hn}
  - {id: s-tokyo, name: B, kind: office, organisation: hn, timezone: Asia/Tokyo}
"""))
    with database.sessions() as session:
        assert session.get(Site, "s-hn").timezone == TZ
        assert session.get(Site, "s-tokyo").timezone == "Asia/Tokyo"


def test_a_site_keeps_its_own_peak_windows_over_the_kind_defaults(database):
    load(database, FLEET_FILE)
    with database.sessions() as session:
        station = session.get(Site, "ga-hn")
        assert station.peak_windows == {"daily": ["06:00-09:00", "18:00-22:30"]}
        defaults = select(Site).where(Site.kind == SiteKind.ward_office, Site.peak_windows.is_(None))
        ward = session.scalars(defaults).first()
        assert ward.effective_peak_windows().to_spec() == {"mon-fri": ["08:00-11:00", "14:00-16:30"],
                                                           "sat": ["08:00-11:00"]}


def test_moving_an_organisation_moves_its_whole_subtree(database, tmp_path):
    base = """
schema: signage.fleet/1
organisations:
  - {id: hn, name: Hà Nội, kind: city}
  - {id: d1, name: D1, kind: district, parent: hn}
  - {id: d2, name: D2, kind: district, parent: hn}
  - {id: w1, name: W1, kind: ward, parent: d1}
  - {id: w1-team, name: Team, kind: partner, parent: w1}
"""
    load(database, write(tmp_path, base))
    moved = write(tmp_path, """
schema: signage.fleet/1
organisations: [{id: w1, name: W1, kind: ward, parent: d2}]
""")
    report = load(database, moved)
    with database.sessions() as session:
        assert session.get(Organisation, "w1-team").path == "/hn/d2/w1/w1-team/"
    assert report.counts["organisations"].updated == 2  # w1 itself and w1-team below it


BAD_FILES = {
    "unknown site kind": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - id: nb-t9
    name: Nhà ga T9
    kind: spaceport
    organisation: hn
""", 7, "sites[0].kind", "use one of"),
    "peak window at 25:00": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - id: ward
    name: Phường
    kind: ward_office
    organisation: hn
    peak_windows:
      mon-fri: ["08:00-11:00", "14:00-25:00"]
""", 9, "sites[0].peak_windows", "HH:MM"),
    "window ending before it starts": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - id: ward
    name: Phường
    kind: ward_office
    organisation: hn
    peak_windows: {mon: ["11:00-08:00"]}
""", 9, "sites[0].peak_windows", "end after the start"),
    "dangling organisation": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - id: ward
    name: Phường
    kind: ward_office
    organisation: hn-nowhere
""", 8, "sites[0].organisation", "add it under organisations"),
    "overlapping peak windows": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - id: ward
    name: Phường
    kind: ward_office
    organisation: hn
    peak_windows: {mon: ["08:00-10:00", "09:00-11:00"]}
""", 9, "sites[0].peak_windows", "merge them"),
    "peak window outside operating hours": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - id: ward
    name: Phường
    kind: ward_office
    organisation: hn
    operating_hours: {mon-fri: ["07:30-17:00"]}
    peak_windows: {mon-fri: ["06:00-09:00"]}
""", 5, "sites[0]", "inside them"),
    "unknown screen reference": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
screens:
  - {id: scr-1, site: no-such-site, name: S, kind: lcd, resolution: 1920x1080}
""", 5, "screens[0].site", "add it under sites"),
    "duplicate screen id": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites: [{id: s1, name: S, kind: office, organisation: hn}]
screens:
  - {id: scr-1, site: s1, name: A, kind: lcd, resolution: 1920x1080}
  - {id: scr-1, site: s1, name: B, kind: lcd, resolution: 1920x1080}
""", 7, "screens[1].id", "its own id"),
    "organisation that is its own ancestor": ("""
schema: signage.fleet/1
organisations:
  - {id: a1, name: A, kind: district, parent: b1}
  - {id: b1, name: B, kind: ward, parent: a1}
""", 4, "organisations[0].parent", "higher up"),
    "speaker with a resolution": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites: [{id: s1, name: S, kind: office, organisation: hn}]
screens:
  - {id: spk-1, site: s1, name: Loa, kind: speaker, resolution: 1920x1080}
""", 6, "screens[0]", "remove them"),
    "group holding a screen outside its owner's scope": ("""
schema: signage.fleet/1
organisations:
  - {id: hn, name: Hà Nội, kind: city}
  - {id: d1, name: D1, kind: district, parent: hn}
  - {id: d2, name: D2, kind: district, parent: hn}
sites: [{id: s1, name: S, kind: office, organisation: d2}]
groups: [{id: g1, name: G, organisation: d1}]
screens:
  - {id: scr-1, site: s1, name: A, kind: lcd, resolution: 1920x1080, groups: [g1]}
""", 10, "screens[0].groups[0]", "an organisation above both"),
    "misspelt field": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city, parnet: x}]
""", 3, "organisations[0].parnet", "spelling"),
    "not YAML at all": ("""
schema: signage.fleet/1
organisations: [{id: hn, name: "Hà Nội, kind: city}
""", None, "", "indentation"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_malformed_fleet_file_is_refused_naming_the_line_and_fix_and_changes_nothing(
        case, database, tmp_path, snapshot):
    load(database, FLEET_FILE)
    before = snapshot()
    text, line, path, fix = BAD_FILES[case]
    with pytest.raises(FileRejected) as rejected:
        load(database, write(tmp_path, text))
    problems = rejected.value.problems
    matching = [p for p in problems if p.path == path]
    assert matching, f"no problem at {path}: {[p.render('f') for p in problems]}"
    if line is not None:
        assert matching[0].line == line
    assert fix in matching[0].render("fleet.yaml")
    assert snapshot() == before


def test_every_problem_of_a_file_is_reported_in_one_run(database, tmp_path):
    with pytest.raises(FileRejected) as rejected:
        load(database, write(tmp_path, """
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - {id: s1, name: S, kind: spaceport, organisation: hn}
  - {id: s2, name: S, kind: office, organisation: ghost}
"""))
    assert Counter(p.path for p in rejected.value.problems) == Counter(["sites[0].kind", "sites[1].organisation"])


def test_a_file_of_another_schema_is_refused(database, tmp_path):
    with pytest.raises(FileRejected) as rejected:
        load(database, write(tmp_path, "schema: signage.campaigns/1\ncampaigns: []\n"))
    assert any(p.path == "schema" for p in rejected.value.problems)


def test_the_example_fleet_is_valid_yaml_with_real_names():
    document = yaml.safe_load(FLEET_FILE.read_text(encoding="utf-8"))
    names = {o["name"] for o in document["organisations"]}
    assert "UBND Thành phố Hà Nội" in names
    assert any("Nội Bài" in s["name"] for s in document["sites"])


def test_a_sites_international_audience_is_its_kinds_default_unless_the_file_sets_it_and_exports_back(database,
                                                                                                     tmp_path):
    text = FLEET_FILE.read_text(encoding="utf-8").replace(
        "  - id: ga-hn\n", "  - id: ga-hn\n    international_audience: false\n", 1)
    assert text != FLEET_FILE.read_text(encoding="utf-8")
    load(database, write(tmp_path, text))
    with database.sessions() as session:
        audience = {site.id: (site.international_audience, site.effective_international_audience())
                    for site in session.scalars(select(Site))}
        exported = yaml.safe_load(export_fleet(session))
    assert audience["nb-t1"] == (None, True)  # an airport, by its kind
    assert audience["ga-hn"] == (False, False)  # a railway station that says otherwise
    assert audience["hadong-phula"] == (None, False)
    entries = {site["id"]: site for site in exported["sites"]}
    assert entries["ga-hn"]["international_audience"] is False and "international_audience" not in entries["nb-t1"]
    hospital = next(site_id for site_id, (_, international) in audience.items() if not international
                    and site_id != "ga-hn")
    entries[hospital]["international_audience"] = True
    load(database, write(tmp_path, yaml.safe_dump(exported, allow_unicode=True)))
    with database.sessions() as session:
        assert session.get(Site, hospital).effective_international_audience() is True
        assert yaml.safe_load(export_fleet(session))["sites"][[s["id"] for s in exported["sites"]].index(hospital)][
            "international_audience"] is True
