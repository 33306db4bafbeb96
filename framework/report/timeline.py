"""Timeline pictures of the certification report, as inline SVG (no JavaScript).

:func:`case_svg`: one case against time since its trigger: the trigger, each DHCP message
(DISCOVER/OFFER/REQUEST/ACK), each DNS query and file request with its protocol and size,
the settle window after the last request; the requests the core expected are marked (an
expected request the phone never made gets a row of its own, marked "not requested").

:func:`lanes_svg`: the run: one row per phone, each case a bar over wall-clock time from
the run's first trigger, coloured by verdict, linked to the case's section.

Both build markup with ``xml.sax.saxutils`` escaping only; every text comes from the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from framework.records import CaseResult

#: Verdict shades: observed splits into "matches the core" and "differs from the core".
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "broken": "#ef6c00",
           "observed-matches": "#1565c0", "observed-differs": "#8e24aa",
           "observed": "#5c6bc0", "skipped": "#757575"}

_DHCP_COLOURS = {"DISCOVER": "#00838f", "OFFER": "#6d4c41", "REQUEST": "#00838f",
                 "ACK": "#6d4c41", "NAK": "#c62828"}
_WIDTH, _LEFT, _RIGHT, _ROW, _TOP = 760, 260, 20, 18, 26


def shade(case: CaseResult) -> str:
    """The case's verdict as the report colours it (observed split by agreement)."""
    if case.verdict == "observed" and case.matches_core is not None:
        return "observed-matches" if case.matches_core else "observed-differs"
    return case.verdict


def anchor(case: CaseResult) -> str:
    """The id of a case's section (one per case and phone)."""
    return "case-" + re.sub(r"[^A-Za-z0-9_-]+", "_", f"{case.phone}-{case.id}")


@dataclass(frozen=True)
class Mark:
    """One event of a case's timeline: its row label, seconds after the trigger, kind."""

    label: str
    at: float
    kind: str  # trigger | dhcp | dns | file | missing
    expected: bool = False
    outcome: str = ""
    url: str | None = None


def _expected_urls(case: CaseResult) -> list[str]:
    exp = case.expected or {}
    return [u for u in (exp.get("firmware_url"), exp.get("config_url")) if isinstance(u, str)]


def _size(n: int | None) -> str:
    if n is None:
        return ""
    return f", {n} B" if n < 10_000 else f", {n / 1024:.0f} KiB"


def marks(case: CaseResult) -> list[Mark]:
    """The events of ``case`` in time order (the trigger first)."""
    t0 = case.start
    out = [Mark(f"trigger ({case.trigger or 'none'})", 0.0, "trigger")]
    for m in case.dhcp or []:
        who = "phone" if m.direction == "received" else "server"
        out.append(Mark(f"DHCP {m.type} ({who})", float(m.time) - t0, "dhcp"))
    wanted = _expected_urls(case)
    for o in case.observed:
        at = float(o.time) - t0
        if o.protocol == "dns":
            out.append(Mark(f"DNS {o.host}{_size(o.bytes)}", at, "dns", outcome=o.outcome))
        else:
            got = _size(o.bytes) if o.outcome == "served" else f", {o.outcome}"
            out.append(Mark(f"{o.protocol.upper()} {_short(_name(o.url))}{got}", at,
                            "file", expected=o.url in wanted, outcome=o.outcome, url=o.url))
    seen = {o.url for o in case.observed}
    out.sort(key=lambda m: m.at)
    out += [Mark(f"not requested: {_short(_name(u))}", float("nan"), "missing", expected=True,
                 url=u)
            for u in wanted if u not in seen]
    return out


def _settle(case: CaseResult, points: Sequence[Mark], settle_s: float | None) -> tuple[
        float, float] | None:
    window = case.settle_s if case.settle_s is not None else settle_s
    heard = [m.at for m in points if m.kind in ("file", "dns", "dhcp")]
    if window is None or not heard:
        return None
    last = max(heard)
    return last, last + float(window)


def _ticks(span: float) -> list[float]:
    step = next(s for s in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1e9)
                if span / s <= 8)
    return [i * step for i in range(int(span / step) + 1)]


def _name(url: str | None) -> str:
    """A request's file name (its URL's last path segment; the host when there is none)."""
    parts = urlsplit(url or "")
    return parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc or (url or "")


def _short(text: str, limit: int = 18) -> str:
    """``text`` within ``limit`` characters, its middle elided (a file name keeps its start
    and its extension)."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[:keep // 2] + "…" + text[-(keep - keep // 2):]


def case_svg(case: CaseResult, settle_s: float | None = None) -> str:
    """The case's timeline: one row per event, x = seconds since the trigger."""
    points = marks(case)
    timed = [m for m in points if m.at == m.at]  # not NaN
    settle = _settle(case, timed, settle_s)
    span = max([m.at for m in timed] + [settle[1] if settle else 0.0, float(case.end - case.start)
                if case.end and case.start else 0.0, 0.1])
    plot = _WIDTH - _LEFT - _RIGHT
    height = _TOP + _ROW * len(points) + 22

    def x(t: float) -> float:
        return round(_LEFT + plot * max(t, 0.0) / span, 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{_WIDTH}" '
           f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
           f'aria-label={quoteattr(f"timeline of {case.id} on {case.phone}")}>',
           f'<title>{escape(case.id)} on {escape(case.phone)}: seconds since the trigger</title>']
    axis_y = _TOP + _ROW * len(points) + 4
    for t in _ticks(span):
        out.append(f'<line x1="{x(t)}" y1="{_TOP - 6}" x2="{x(t)}" y2="{axis_y}" '
                   f'stroke="#e0e0e0"/><text x="{x(t)}" y="{axis_y + 12}" font-size="10" '
                   f'text-anchor="middle" fill="#555">{t:g} s</text>')
    if settle is not None:
        out.append(f'<rect class="settle" x="{x(settle[0])}" y="{_TOP - 8}" '
                   f'width="{max(x(settle[1]) - x(settle[0]), 1)}" height="{axis_y - _TOP + 8}"'
                   f' fill="#fff59d" fill-opacity="0.5"><title>settle window: '
                   f'{settle[1] - settle[0]:g} s of quiet after the last message</title></rect>'
                   f'<text x="{x(settle[0]) + 3}" y="{_TOP - 10}" font-size="10" fill="#8d6e00">'
                   f'settle window</text>')
    for i, m in enumerate(points):
        y = _TOP + _ROW * i + _ROW / 2
        weight = ' font-weight="bold"' if m.expected else ""
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4}" font-size="11" text-anchor="end"'
                   f'{weight}>{escape(m.label)}<title>{escape(m.url or m.label)}</title></text>')
        if m.kind == "missing":
            out.append(f'<g class="expected missing"><rect x="{_LEFT}" y="{y - 6}" width="{plot}"'
                       f' height="12" fill="none" stroke="#c62828" stroke-dasharray="4 3"/>'
                       f'<text x="{_LEFT + 6}" y="{y + 4}" font-size="10" fill="#c62828">'
                       f'expected, never requested</text></g>')
            continue
        colour = {"trigger": "#000", "dns": "#455a64", "file": "#37474f"}.get(
            m.kind, _DHCP_COLOURS.get(m.label.split()[1] if m.kind == "dhcp" else "", "#00838f"))
        if m.kind == "trigger":
            out.append(f'<line class="trigger" x1="{x(0)}" y1="{_TOP - 6}" x2="{x(0)}" '
                       f'y2="{axis_y}" stroke="#000" stroke-width="2"/>')
        out.append(f'<circle class="event {m.kind}" cx="{x(m.at)}" cy="{y}" r="4" '
                   f'fill="{colour}"><title>{escape(m.url or m.label)} at +{m.at:.3f} s'
                   f'{" (" + escape(m.outcome) + ")" if m.outcome else ""}</title></circle>')
        if m.expected:
            out.append(f'<path class="expected" d="M{x(m.at)} {y - 9} l6 9 l-6 9 l-6 -9 z" '
                       f'fill="none" stroke="#2e7d32" stroke-width="2"><title>expected by the '
                       f'core</title></path>')
    out.append(f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_WIDTH - _RIGHT}" y2="{axis_y}" '
               f'stroke="#555"/><text x="{_LEFT - 16}" y="{axis_y + 12}" font-size="10" '
               f'text-anchor="end" fill="#555">since the trigger</text>'
               f'<path d="M8 {axis_y + 4} l5 7 l-5 7 l-5 -7 z" fill="none" stroke="#2e7d32" '
               f'stroke-width="2"/><text x="18" y="{axis_y + 15}" font-size="10" fill="#2e7d32">'
               f'expected by the core</text></svg>')
    return "".join(out)


def lanes_svg(cases: Iterable[CaseResult]) -> str:
    """The run's lanes: phones on the y axis, each case a bar over time since the run's
    first trigger, coloured by verdict, linked to its case."""
    cases = [c for c in cases if c.start and c.end]
    if not cases:
        return ""
    phones = list(dict.fromkeys(c.phone for c in cases))
    t0 = min(float(c.start) for c in cases)
    span = max(max(float(c.end) for c in cases) - t0, 0.1)
    left, row = 90, 22
    plot = _WIDTH - left - _RIGHT
    height = _TOP + row * len(phones) + 24

    def x(t: float) -> float:
        return round(left + plot * (t - t0) / span, 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="lanes" width="{_WIDTH}" '
           f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
           f'aria-label="cases per phone over time">'
           f'<title>Cases per phone over time since the first trigger</title>']
    axis_y = _TOP + row * len(phones)
    for t in _ticks(span):
        out.append(f'<line x1="{x(t0 + t)}" y1="{_TOP - 4}" x2="{x(t0 + t)}" y2="{axis_y}" '
                   f'stroke="#e0e0e0"/><text x="{x(t0 + t)}" y="{axis_y + 14}" font-size="10"'
                   f' text-anchor="middle" fill="#555">{t:g} s</text>')
    for i, phone in enumerate(phones):
        y = _TOP + row * i
        out.append(f'<text x="{left - 6}" y="{y + row / 2 + 4}" font-size="11" '
                   f'text-anchor="end">{escape(phone)}</text>')
    for c in cases:
        y = _TOP + row * phones.index(c.phone) + 3
        s = shade(c)
        w = max(x(float(c.end)) - x(float(c.start)), 1.5)
        out.append(f'<a href={quoteattr("#" + anchor(c))}><rect class="case {s}" '
                   f'data-verdict="{s}" x="{x(float(c.start))}" y="{y}" width="{w}" '
                   f'height="{row - 6}" fill="{COLOURS.get(s, "#000")}" stroke="#fff" '
                   f'stroke-width="0.5"><title>{escape(c.id)} on {escape(c.phone)}: '
                   f'{escape(s)} ({float(c.end) - float(c.start):.1f} s)</title></rect></a>')
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{_WIDTH - _RIGHT}" y2="{axis_y}" '
               f'stroke="#555"/></svg>')
    return "".join(out)
