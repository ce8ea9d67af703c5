"""The web UI's words: Vietnamese first, English on request (?lang=en, remembered in a cookie)."""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("vi", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"vi": "Hệ thống phát sóng màn hình công cộng Hà Nội",
                  "en": "Hà Nội public screens broadcast scheduler"},
    "nav.fleet": {"vi": "Đơn vị & điểm đặt", "en": "Units & sites"},
    "nav.campaigns": {"vi": "Chiến dịch", "en": "Campaigns"},
    "nav.media": {"vi": "Thư viện media", "en": "Media library"},
    "fleet.heading": {"vi": "Tổ chức, điểm đặt và màn hình", "en": "Organisations, sites and screens"},
    "fleet.organisations": {"vi": "Tổ chức", "en": "Organisations"},
    "fleet.sites": {"vi": "Điểm đặt màn hình", "en": "Sites"},
    "fleet.screens": {"vi": "Màn hình", "en": "Screens"},
    "fleet.empty": {"vi": "Chưa có dữ liệu. Nhập tệp đội màn hình: signage fleet import FILE",
                    "en": "Nothing here yet. Import a fleet file: signage fleet import FILE"},
    "fleet.all": {"vi": "Tất cả", "en": "All"},
    "fleet.scope": {"vi": "Phạm vi", "en": "Scope"},
    "col.id": {"vi": "Mã", "en": "Id"},
    "col.name": {"vi": "Tên", "en": "Name"},
    "col.kind": {"vi": "Loại", "en": "Kind"},
    "col.organisation": {"vi": "Đơn vị", "en": "Organisation"},
    "col.site": {"vi": "Điểm đặt", "en": "Site"},
    "col.screens": {"vi": "Số màn hình", "en": "Screens"},
    "col.peak": {"vi": "Khung giờ cao điểm hôm nay", "en": "Today's peak windows"},
    "col.operating": {"vi": "Giờ hoạt động hôm nay", "en": "Today's operating hours"},
    "col.resolution": {"vi": "Độ phân giải", "en": "Resolution"},
    "col.groups": {"vi": "Nhóm", "en": "Groups"},
    "closed": {"vi": "nghỉ", "en": "closed"},
    "org.city": {"vi": "Thành phố", "en": "City"},
    "org.department": {"vi": "Sở, ngành", "en": "Department"},
    "org.district": {"vi": "Quận, huyện", "en": "District"},
    "org.ward": {"vi": "Phường", "en": "Ward"},
    "org.commune": {"vi": "Xã", "en": "Commune"},
    "org.partner": {"vi": "Doanh nghiệp đối tác", "en": "Partner"},
    "site.airport": {"vi": "Sân bay", "en": "Airport"},
    "site.railway_station": {"vi": "Ga đường sắt", "en": "Railway station"},
    "site.bus_station": {"vi": "Bến xe", "en": "Bus station"},
    "site.bus": {"vi": "Xe buýt", "en": "Bus"},
    "site.bus_stop": {"vi": "Điểm dừng xe buýt", "en": "Bus stop"},
    "site.ward_office": {"vi": "Trụ sở UBND phường, xã", "en": "Ward office"},
    "site.intersection": {"vi": "Nút giao thông", "en": "Intersection"},
    "site.hospital": {"vi": "Bệnh viện", "en": "Hospital"},
    "site.school": {"vi": "Trường học", "en": "School"},
    "site.mall": {"vi": "Trung tâm thương mại", "en": "Mall"},
    "site.apartment": {"vi": "Chung cư", "en": "Apartment building"},
    "site.office": {"vi": "Cơ quan", "en": "Office"},
    "screen.lcd": {"vi": "LCD", "en": "LCD"},
    "screen.led": {"vi": "LED", "en": "LED"},
    "screen.speaker": {"vi": "Loa", "en": "Speaker"},
}


def add_messages(messages: dict[str, dict[str, str]]) -> None:
    """A module's own words, registered at import; a key may be defined once."""
    for key, entry in messages.items():
        if key in MESSAGES and MESSAGES[key] != entry:
            raise ValueError(f"the message key {key!r} is defined twice with different words")
        if "vi" not in entry:
            raise ValueError(f"the message {key!r} has no Vietnamese words: Vietnamese is the UI's first language")
    MESSAGES.update(messages)


def language_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get("lang")
    return asked if asked in LANGUAGES else "vi"


def translate(key: str, language: str) -> str:
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(language) or entry["vi"]
