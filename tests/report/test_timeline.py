"""The report's timeline pictures (framework.report.timeline): inline SVG from the record."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from framework.records import CaseResult, document
from framework.report import html, timeline
from tests.records.samples import EXPECTED, case, phone_record, run_record

SVG = "{http://www.w3.org/2000/svg}"
DHCP = [{"type": t, "time": at, "direction": d} for t, at, d in (
    ("DISCOVER", 10.12, "received"), ("OFFER", 10.13, "sent"),
    ("REQUEST", 10.15, "received"), ("ACK", 10.2, "sent"))]


def _case(**over: object) -> CaseResult:
    observed = [
        {"time": 10.3, "protocol": "dns", "url": None, "host": "lab.example", "outcome": "served",
         "detail": "A", "bytes": 61},
        {"time": 10.5, "protocol": "tftp", "url": EXPECTED["firmware_url"], "host": "192.0.2.1",
         "outcome": "served", "detail": "RRQ", "bytes": 204800},
    ]
    return case("t10-2/r2", dhcp=DHCP, observed=observed, settle_s=0.6, **over)


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_case_timeline_has_trigger_dhcp_requests_sizes_and_settle_window() -> None:
    svg = timeline.case_svg(_case())
    root = _parse(svg)
    labels = [t.text or "" for t in root.iter(f"{SVG}text")]
    for kind in ("DISCOVER", "OFFER", "REQUEST", "ACK"):
        assert any(f"DHCP {kind}" in label for label in labels), kind
    assert any(label.startswith("trigger (reprovision)") for label in labels)
    assert any("DNS lab.example, 61 B" in label for label in labels)
    assert any(label == "TFTP 440HD.img, 200 KiB" for label in labels)
    settle = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "settle"]
    assert len(settle) == 1
    # the settle window starts at the last request (+0.4 s) and lasts the case's 0.6 s
    events = {c.get("class"): float(c.get("cx", 0)) for c in root.iter(f"{SVG}circle")}
    assert float(settle[0].get("x", 0)) == events["event file"]


def test_expected_requests_are_marked_and_a_missing_one_gets_its_own_row() -> None:
    root = _parse(timeline.case_svg(_case()))
    marked = [p for p in root.iter(f"{SVG}path") if p.get("class") == "expected"]
    assert len(marked) == 1  # the firmware request; the DNS query is not expected
    missing = [g for g in root.iter(f"{SVG}g") if g.get("class") == "expected missing"]
    assert len(missing) == 1  # the configuration file was never requested
    assert any(EXPECTED["config_url"] in (t.text or "")
               for t in root.iter(f"{SVG}title"))


def test_nothing_expected_marks_nothing() -> None:
    root = _parse(timeline.case_svg(_case(expected=None)))
    assert not [p for p in root.iter(f"{SVG}path") if p.get("class") == "expected"]


def test_an_older_record_without_dhcp_or_sizes_still_draws() -> None:
    root = _parse(timeline.case_svg(case("old")))
    assert not [t for t in root.iter(f"{SVG}text") if "DHCP" in (t.text or "")]
    assert [c for c in root.iter(f"{SVG}circle") if c.get("class") == "event file"]
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("class") == "settle"]
    assert [r for r in _parse(timeline.case_svg(case("old"), settle_s=0.6)).iter(f"{SVG}rect")
            if r.get("class") == "settle"]


def test_labels_are_escaped() -> None:
    svg = timeline.case_svg(_case(trigger="<script>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    _parse(svg)


def test_observed_shades_split_by_agreement() -> None:
    assert timeline.shade(case(verdict="observed", matches_core=True)) == "observed-matches"
    assert timeline.shade(case(verdict="observed", matches_core=False)) == "observed-differs"
    assert timeline.shade(case(verdict="failed")) == "failed"
    assert timeline.COLOURS["observed-matches"] != timeline.COLOURS["observed-differs"]


def test_lanes_put_phones_on_rows_and_link_each_bar_to_its_case() -> None:
    cases = [case("a", "ph1", "passed", start=10.0, end=12.0),
             case("b", "ph1", "failed", start=12.0, end=13.0),
             case("a", "ph2", "observed", matches_core=False, start=10.5, end=14.0)]
    root = _parse(timeline.lanes_svg(cases))
    bars = [r for r in root.iter(f"{SVG}rect") if "case" in (r.get("class") or "")]
    assert [b.get("data-verdict") for b in bars] == ["passed", "failed", "observed-differs"]
    ys = [float(b.get("y", 0)) for b in bars]
    assert ys[0] == ys[1] != ys[2]  # one row per phone
    xs = [float(b.get("x", 0)) for b in bars]
    assert xs[0] < xs[2] < xs[1]  # by time since the first trigger
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert links == [f"#{timeline.anchor(c)}" for c in cases]
    assert timeline.lanes_svg([]) == ""


def test_the_page_links_matrix_cells_to_cases_and_embeds_the_pictures() -> None:
    failed = _case(verdict="failed")
    agrees = case("x", "ph1", "observed", matches_core=True)
    doc = document(run_record(), [phone_record()], [failed, agrees])
    page = html.render(doc)
    assert f'href="#{timeline.anchor(failed)}"' in page
    assert f'id="{timeline.anchor(failed)}"' in page
    assert 'class="v observed-matches"' in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') == 2
    assert 'class="lanes"' in page and "<script" not in page
