"""Draws the example iHanoi campaign's poster (examples/media/ihanoi-poster*.png) with the server's own poster
template (media/posters.py): landscape 1920x1080 and portrait 1080x1920, the two versions of one creative in
examples/ihanoi-campaign.yaml. The outputs are committed; run this again only to change them:
    .venv/bin/python scripts/make-example-posters.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.posters import checked_template, render_poster  # noqa: E402

UNIT = "UBND Thành phố Hà Nội"
POSTER = {
    "title": "Cài đặt ứng dụng iHanoi – Hà Nội số",
    "text": "Kênh tương tác chính quyền – người dân Thủ đô: phản ánh hiện trường, tra cứu thủ tục hành chính, nhận "
            "thông báo của phường, xã. Quét mã QR để cài đặt ứng dụng.",
    "link": "https://ihanoi.hanoi.gov.vn",
    "hotline": "Tổng đài 1022 - nhánh số 8",
}
FILES = {"ihanoi-poster.png": (1920, 1080), "ihanoi-poster-portrait.png": (1080, 1920)}


def main(out: Path) -> None:
    template = checked_template(POSTER)
    out.mkdir(parents=True, exist_ok=True)
    for name, (width, height) in FILES.items():
        (out / name).write_bytes(render_poster(template, UNIT, width, height))
        print(out / name, f"{width}x{height}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "examples" / "media")
