"""junit.xml from the certification record, for CI servers (issue 17).

One ``<testsuite>`` per phone, its properties naming the phone (model, firmware, MAC,
profile, address) and the run (rig, run id, trigger); one ``<testcase>`` per case, named
by the case id (the manual's row, e.g. ``t10-2/r3-host-ip-67-names``) and its title, its
class name the phone and group, the manual source a property. A *failed* case is a
``<failure>``, a *broken* one (rig fault) an ``<error>``, an *observed* or *skipped* one
``<skipped>`` with its reason; a passed case is plain. Written with junitparser.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from junitparser import (
    Error,
    Failure,
    JUnitXml,
    Properties,
    Property,
    Skipped,
    TestCase,
    TestSuite,
)

from framework.records import CaseResult, CertificationDocument, PhoneRecord

FILENAME = "junit.xml"

#: what XML 1.0 cannot carry (control characters such as a console's ESC or NUL, lone
#: surrogates): replaced, so that a reason quoting raw console text cannot break the file
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: object) -> str:
    """``text`` as XML 1.0 can carry it (each character it cannot, as U+FFFD)."""
    return _NOT_XML.sub("\ufffd", str(text))


def build(doc: CertificationDocument) -> JUnitXml:
    """The JUnit document of ``doc``: a suite per phone (in the record's phone order, then
    any phone only the cases name), a case per case."""
    by_phone: dict[str, list[CaseResult]] = defaultdict(list)
    for case in doc.cases:
        by_phone[case.phone].append(case)
    phones = {p.name: p for p in doc.phones}
    names = [p.name for p in doc.phones] + [n for n in by_phone if n not in phones]
    xml = JUnitXml(name=_x(f"hil {doc.run.rig} {doc.run.id}"))
    for name in names:
        xml.add_testsuite(_suite(doc, name, phones.get(name), by_phone.get(name, [])))
    return xml


def write(doc: CertificationDocument, path: Path) -> Path:
    """Write ``doc``'s JUnit document to ``path``; the path."""
    build(doc).write(str(path), pretty=True)
    return path


def _suite(doc: CertificationDocument, name: str, phone: PhoneRecord | None,
           cases: list[CaseResult]) -> TestSuite:
    first = cases[0] if cases else None
    model = phone.model if phone else first.model if first else ""
    suite = TestSuite(_x(f"{name} {model}".strip()))
    props = {
        "phone": name,
        "model": model,
        "firmware": (phone.firmware if phone else first.firmware if first else None),
        "mac": phone.mac if phone else first.mac if first else None,
        "profile": (phone.profile if phone else first.profile if first else None)
        or doc.run.profile_override,
        "address": phone.address if phone else None,
        "state": phone.state if phone else None,
        "rig": doc.run.rig,
        "rig_file": doc.run.rig_file,
        "run_id": doc.run.id,
        "trigger": doc.run.trigger,
        "framework_revision": doc.run.framework_revision,
    }
    if phone is not None and phone.broken_reason:
        props["broken_reason"] = phone.broken_reason
    for key, value in props.items():
        if value is not None and value != "":
            suite.add_property(key, _x(value))
    starts = [c.start for c in cases if c.start]
    if starts:
        suite.timestamp = _iso(min(starts))
    for case in cases:
        suite.add_testcase(_case(case))
    suite.update_statistics()
    return suite


def _case(case: CaseResult) -> TestCase:
    time = max(0.0, float(case.end) - float(case.start)) if case.start and case.end else 0.0
    tc = TestCase(_x(f"{case.id}: {case.title} [{case.manual}]"),
                  classname=_x(f"{case.phone}.{case.group}"), time=round(time, 3))
    if case.verdict == "failed":
        tc.result = [Failure(_x(case.reason), type_="failed")]
    elif case.verdict == "broken":
        tc.result = [Error(_x(case.reason), type_="broken")]
    elif case.verdict == "observed":
        match = {True: "matches the core", False: "differs from the core", None: ""}[
            case.matches_core]
        tc.result = [Skipped(_x(f"observed{': ' + match if match else ''}: {case.reason}"),
                             type_="observed")]
    elif case.verdict == "skipped":
        tc.result = [Skipped(_x(case.reason), type_="skipped")]
    details = [case.reason, *(case.differences or [])]
    if case.traceback and case.verdict == "broken":
        details.append(case.traceback)
    if case.verdict != "passed":
        tc.result[0].text = _x("\n".join(d for d in details if d))
    tc.append(_properties(case))
    return tc


def _properties(case: CaseResult) -> Properties:
    props = Properties()
    for key, value in (("case", case.id), ("manual", case.manual), ("verdict", case.verdict),
                       ("url_option", case.url_option), ("trigger", case.trigger)):
        if value is not None:
            props.add_property(Property(key, _x(value)))
    return props


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
