"""The reports' charts: self-contained, accessible SVG whose shapes are in proportion to the figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from scheduler.reports.charts import (
    AMBER,
    GREEN,
    GREY,
    RED,
    compliance_by_day,
    compliance_by_unit,
    count_ticks,
    delivery_by_hour,
)

SVG = "{http://www.w3.org/2000/svg}"
COUNTS = [0, 0, 0, 0, 0, 3, 40, 60, 55, 20, 10, 8, 9, 10, 12, 15, 30, 50, 48, 20, 5, 2, 0, 0]
PEAKS = [(330, 540), (990, 1140)]  # 05:30–09:00 and 16:30–19:00
DAYS = [(date(2024, 8, 20) + timedelta(days=i), value) for i, value in enumerate([1.0, 0.9, 0.5, None, 1.2])]
UNITS = [("Quận Hà Đông", 1.0), ("Huyện Ba Vì", 0.85), ("Quận Ba Đình", 0.42), ("Phường Nguyễn Trung Trực", None)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def shapes(root: ET.Element, css: str) -> list[ET.Element]:
    return [e for e in root.iter() if css in (e.get("class") or "").split()]


def every_chart():
    return [delivery_by_hour(COUNTS, PEAKS, "Lượt phát theo giờ"),
            compliance_by_day(DAYS, caption="Tỷ lệ hoàn thành theo ngày"),
            compliance_by_unit(UNITS, "Tỷ lệ hoàn thành theo quận, huyện")]


@pytest.mark.parametrize("chart", every_chart(), ids=["by-hour", "by-day", "by-unit"])
def test_a_chart_is_valid_svg_titled_with_its_caption_for_screen_readers(chart):
    root = parse(chart.svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("viewBox")
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text == chart.caption and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


@pytest.mark.parametrize("chart", every_chart(), ids=["by-hour", "by-day", "by-unit"])
def test_a_chart_is_self_contained_without_scripts_links_or_external_fonts(chart):
    root = parse(chart.svg)
    tags = {element.tag.removeprefix(SVG) for element in root.iter()}
    assert not tags & {"script", "image", "foreignObject", "a", "use", "style"}
    attributes = [(name, value) for element in root.iter() for name, value in element.attrib.items()]
    assert not [name for name, _ in attributes if "href" in name or name.startswith("on")]
    assert not [value for _, value in attributes if "url(" in value or "://" in value.replace(SVG[1:-1], "")]


def test_hour_bars_are_as_tall_as_their_counts_in_proportion():
    bars = shapes(parse(delivery_by_hour(COUNTS, PEAKS, "Lượt phát theo giờ").svg), "bar")
    assert [int(bar.get("data-hour")) for bar in bars] == list(range(24))
    heights = [float(bar.get("height")) for bar in bars]
    tallest = heights[COUNTS.index(max(COUNTS))]
    for count, height in zip(COUNTS, heights, strict=True):
        assert height == pytest.approx(tallest * count / max(COUNTS), abs=0.02)
    bottoms = {round(float(bar.get("y")) + float(bar.get("height")), 1) for bar in bars}
    assert len(bottoms) == 1  # all standing on the same axis


def test_peak_windows_are_shaded_across_exactly_their_minutes():
    root = parse(delivery_by_hour(COUNTS, PEAKS, "Lượt phát theo giờ").svg)
    bars = shapes(root, "bar")
    hour_width = float(bars[1].get("x")) - float(bars[0].get("x"))
    midnight = float(bars[0].get("x")) - 0.15 * hour_width  # bars sit centred in their hour's slot
    shaded = [(float(p.get("x")), float(p.get("width"))) for p in shapes(root, "peak")]
    assert shaded == [pytest.approx((midnight + start / 60 * hour_width, (end - start) / 60 * hour_width), abs=0.02)
                      for start, end in PEAKS]


def test_a_peak_window_over_midnight_is_shaded_at_both_ends_of_the_day():
    root = parse(delivery_by_hour(COUNTS, [(1320, 60)], "Lượt phát theo giờ").svg)
    assert [(p.get("data-start"), p.get("data-end")) for p in shapes(root, "peak")] == [("1320", "1440"), ("0", "60")]


def test_without_peak_windows_nothing_is_shaded():
    assert shapes(parse(delivery_by_hour(COUNTS, [], "Lượt phát theo giờ").svg), "peak") == []


def test_delivery_by_hour_refuses_anything_but_24_counts():
    with pytest.raises(ValueError, match="24 figures, one per hour 0–23; got 23"):
        delivery_by_hour(COUNTS[:23], PEAKS, "Lượt phát theo giờ")


def test_a_peak_window_outside_the_day_is_refused_with_its_unit():
    with pytest.raises(ValueError, match="minutes from midnight"):
        delivery_by_hour(COUNTS, [(330, 2000)], "Lượt phát theo giờ")


def test_day_bars_are_in_proportion_and_coloured_by_threshold():
    root = parse(compliance_by_day(DAYS, caption="Tỷ lệ hoàn thành theo ngày").svg)
    bars = shapes(root, "bar")
    assert [bar.get("data-day") for bar in bars] == ["2024-08-20", "2024-08-21", "2024-08-22", "2024-08-24"]
    assert [bar.get("fill") for bar in bars] == [GREEN, AMBER, RED, GREEN]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] / heights[0] == pytest.approx(0.9, abs=1e-3)
    assert heights[3] / heights[0] == pytest.approx(1.2, abs=1e-3)


def test_the_target_line_of_the_day_chart_is_level_with_the_top_of_a_100_percent_bar():
    root = parse(compliance_by_day(DAYS, caption="Tỷ lệ hoàn thành theo ngày").svg)
    [line] = shapes(root, "target")
    full = shapes(root, "bar")[0]
    assert float(line.get("y1")) == pytest.approx(float(full.get("y")), abs=0.1)
    assert any((text.text or "") == "Mục tiêu 100,0 %" for text in root.iter(f"{SVG}text"))


def test_a_day_without_figures_is_marked_not_drawn_as_a_failure():
    root = parse(compliance_by_day(DAYS, caption="Tỷ lệ hoàn thành theo ngày").svg)
    [gap] = shapes(root, "no-data")
    assert gap.get("data-day") == "2024-08-23" and gap.get("fill") == GREY
    assert "không có số liệu" in gap.find(f"{SVG}title").text


def test_unit_bars_keep_the_given_order_are_coloured_by_threshold_and_print_their_percentages():
    root = parse(compliance_by_unit(UNITS, "Tỷ lệ hoàn thành theo quận, huyện").svg)
    bars = shapes(root, "bar")
    assert [bar.get("data-unit") for bar in bars] == ["Quận Hà Đông", "Huyện Ba Vì", "Quận Ba Đình"]
    assert [bar.get("fill") for bar in bars] == [GREEN, AMBER, RED]
    assert [float(bar.get("width")) / float(bars[0].get("width")) for bar in bars] == pytest.approx([1, 0.85, 0.42])
    printed = [text.text for text in shapes(root, "value")]
    assert printed == ["100,0 %", "85,0 %", "42,0 %", "— không có số liệu"]


def test_unit_names_are_labelled_in_the_given_order_with_long_names_shortened_but_kept_in_full_as_a_tooltip():
    long_name = "Ủy ban nhân dân phường Nguyễn Trung Trực, quận Ba Đình"
    root = parse(compliance_by_unit([("Quận Hà Đông", 1.0), (long_name, 0.5)], "Theo đơn vị").svg)
    labels = shapes(root, "unit")
    assert [label.find(f"{SVG}title").text for label in labels] == ["Quận Hà Đông", long_name]
    shown = "".join(labels[1].itertext()).removeprefix(long_name)
    assert shown.endswith("…") and len(shown) <= 22


def test_an_empty_unit_list_says_there_is_no_data():
    root = parse(compliance_by_unit([], "Theo đơn vị").svg)
    assert shapes(root, "bar") == []
    assert "Không có dữ liệu." in [text.text for text in root.iter(f"{SVG}text")]


def test_charts_speak_english_when_asked():
    root = parse(compliance_by_unit(UNITS, "By district", language="en").svg)
    assert [text.text for text in shapes(root, "value")][:2] == ["100.0%", "85.0%"]
    assert "Peak windows" in delivery_by_hour(COUNTS, PEAKS, "Plays by hour", language="en").svg


def test_names_with_markup_are_escaped_not_interpreted():
    root = parse(compliance_by_unit([("<b>Phường & Xã</b>", 1.0)], "Đơn vị <i>&</i>").svg)
    assert root.find(f"{SVG}title").text == "Đơn vị <i>&</i>"
    assert shapes(root, "bar")[0].get("data-unit") == "<b>Phường & Xã</b>"


@pytest.mark.parametrize(("largest", "ticks"), [
    (0, [0, 1]), (1, [0, 1]), (2, [0, 1, 2]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]), (23, [0, 10, 20, 30]),
    (60, [0, 20, 40, 60]), (835, [0, 500, 1000]), (1200, [0, 500, 1000, 1500])])
def test_a_count_axis_ticks_on_whole_numbers_a_nice_step_apart(largest, ticks):
    assert count_ticks(largest) == ticks


def test_an_hour_chart_of_few_plays_labels_its_axis_with_distinct_whole_numbers():
    """Issue 18: two plays gave the labels 0, 0, 1, 2, 2 (steps of 0.5 printed without decimals)."""
    counts = [0] * 24
    counts[8] = 2
    root = parse(delivery_by_hour(counts, PEAKS, "Lượt phát theo giờ").svg)
    assert [text.text for text in shapes(root, "tick")] == ["0", "1", "2"]


def test_a_unit_figure_just_short_of_the_target_is_printed_clear_of_the_target_line():
    root = parse(compliance_by_unit([("Phường Văn Quán", 0.9), ("Phường Phú La", 0.333)], "Theo đơn vị").svg)
    [line] = shapes(root, "target")
    near, far = shapes(root, "value")
    assert float(near.get("x")) > float(line.get("x1"))  # 90,0 % after the line, not struck through by it
    bar = shapes(root, "bar")[1]
    assert float(far.get("x")) == pytest.approx(float(bar.get("x")) + float(bar.get("width")) + 4, abs=0.1)
