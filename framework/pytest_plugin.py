"""The pytest plugin: `pytest testcases --rig FILE` runs every case on every phone.

Thin over :mod:`framework.runner.session`. At the end of collection the plugin knows every
(case, phone) item; the lab session starts once and runs them in one lane per phone, all
lanes at once. Each test item then waits for its own result (an event) and reports it:

- *passed* -> the test passes;
- *failed* -> ``pytest.fail`` (Allure: failed, a product failure);
- *broken* -> :class:`RigFault` raised (Allure: broken, a rig fault);
- *observed* (the profile does not promise this row) -> skipped with the observation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

from framework.errors import RigFault
from framework.runner.catalogue import Case
from framework.runner.session import ROOT, LabSession, RunOptions

_ITEMS_KEY = pytest.StashKey[list[tuple[Case, str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hil", "400HD hardware-in-the-loop lab")
    g.addoption("--rig", default=str(ROOT / "rigs" / "sim.yaml"),
                help="rig file (default: rigs/sim.yaml, the simulated rig)")
    g.addoption("--profile", default=None,
                help="firmware behaviour profile (2.2, 3.4); default: from each phone's version")
    g.addoption("--phones", default=None, help="comma-separated subset of the rig's phones")
    g.addoption("--settle", type=float, default=None,
                help="seconds to keep listening after the last request (default: 0.6 sim, 3 real)")
    g.addoption("--trigger", choices=("reprovision", "power-cycle"), default="reprovision",
                help="how a case starts: console re-provisioning or a PDU power cycle")
    g.addoption("--reports", default=str(ROOT / "reports"), help="where runs write their records")
    g.addoption("--run-id", default=None, help="run directory name under --reports")
    g.addoption("--no-manage-sim", action="store_true",
                help="do not start/stop the simulated rig (it is already up)")
    g.addoption("--firmware", action="append", default=None, metavar="PATH",
                help="install this release (image directory or file; repeatable) first")
    g.addoption("--restore", action="store_true",
                help="first put back what each phone ran before the last --firmware")
    g.addoption("--resume", default=None,
                help="an earlier run directory: keep its finished cases, run the missing ones")
    g.addoption("--allow-other-dhcp", action="store_true",
                help="start even if another DHCP server answers on the lab interface")
    g.addoption("--hil-progress", action="store_true",
                help="print one line per finished case as lanes finish them")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil_case(case): a provisioning case run on the rig")
    config.addinivalue_line("markers",
                            "needs(capability): skip on rigs without that capability")


def _phones(config: pytest.Config) -> list[str]:
    from framework.rig import RigError, load_rig

    try:
        rig = load_rig(config.getoption("--rig"))
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = [p.name for p in rig.phones]
    wanted = config.getoption("--phones")
    if wanted:
        chosen = [n.strip() for n in wanted.split(",") if n.strip()]
        missing = [n for n in chosen if n not in names]
        if missing:
            raise pytest.UsageError(f"--phones: no phone {missing[0]!r} in the rig "
                                    f"(phones: {', '.join(names)})")
        return chosen
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_phone" in metafunc.fixturenames:
        phones = metafunc.config.stash.get(_PHONES_KEY, None)
        if phones is None:
            phones = _phones(metafunc.config)
            metafunc.config.stash[_PHONES_KEY] = phones
        metafunc.parametrize("hil_phone", phones, ids=phones)


_PHONES_KEY = pytest.StashKey[list[str]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every (case, phone) left after selection (-k, -m, deselection) goes to a lane."""
    pairs: list[tuple[Case, str]] = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        case = callspec.params.get("case")
        phone = callspec.params.get("hil_phone")
        if isinstance(case, Case) and isinstance(phone, str):
            pairs.append((case, phone))
    session.config.stash[_ITEMS_KEY] = pairs


@pytest.fixture(scope="session")
def hil_lab(request: pytest.FixtureRequest) -> Any:
    """The started lab session with every collected case scheduled in its lane."""
    config = request.config
    options = RunOptions(
        rig_path=Path(config.getoption("--rig")),
        profile=config.getoption("--profile"),
        phones=config.stash.get(_PHONES_KEY, None),
        settle_s=config.getoption("--settle"),
        trigger=config.getoption("--trigger"),
        reports_dir=Path(config.getoption("--reports")),
        run_id=config.getoption("--run-id"),
        manage_sim=not config.getoption("--no-manage-sim"),
        resume=Path(config.getoption("--resume")) if config.getoption("--resume") else None,
        allow_other_dhcp=config.getoption("--allow-other-dhcp"),
    )
    session = LabSession(options)
    from framework.labgrid.fence import active_guard

    session.guard = active_guard()  # lab scale: stop when the place's lock is lost
    _CURRENT["session"] = session
    try:
        session.start()
    except RigFault as exc:
        _refuse(config, f"rig not usable: {exc}", returncode=3)
    firmware = [Path(p) for p in config.getoption("--firmware") or []]
    if firmware or config.getoption("--restore"):  # issue 11: framework/release/install.py
        from framework.release import ReleaseError
        from framework.release.install import prepare

        try:
            prepare(session, firmware, restore=config.getoption("--restore"))
        except ReleaseError as exc:
            session.stop("failed-to-start")
            _refuse(config, f"release not usable: {exc}", returncode=2)
    items = config.stash.get(_ITEMS_KEY, [])
    session.schedule(items, on_done=_progress(len(items)) if config.getoption("--hil-progress")
                     else None)
    _allure_environment(config, session)
    yield session
    session.stop("interrupted" if config.stash.get(_INTERRUPTED_KEY, False) else "finished")


_INTERRUPTED_KEY = pytest.StashKey[bool]()


_REFUSED: dict[str, str] = {}


def refusal() -> str | None:
    """The line this process's run was refused with (already on stderr), if it was: `hil
    run` (pytest in-process) then adds nothing of its own."""
    return _REFUSED.get("line")


def _refuse(config: pytest.Config, line: str, *, returncode: int) -> NoReturn:
    """End the run before any case with one line on stderr and ``returncode``.

    ``pytest.exit`` alone makes the terminal reporter print
    ``!!! _pytest.outcomes.Exit: ... !!!`` and "no tests ran": pytest internals around
    the one thing the user must read. No case ran, so the reporter has nothing to say:
    it is unregistered first (the plugin manager's public API) and the reason goes to the
    process's own stderr (not pytest's capture of it: `hil run` uses --capture=sys).
    """
    import sys

    _REFUSED["line"] = "hil run: " + " ".join(line.splitlines())
    err = sys.__stderr__ or sys.stderr
    err.write(_REFUSED["line"] + "\n")
    err.flush()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)
    pytest.exit(line, returncode=returncode)


def pytest_keyboard_interrupt(excinfo: Any) -> None:
    """Ctrl-C: the session fixture's teardown still runs; the record says 'interrupted'."""
    session = _CURRENT.get("session")
    if session is not None:
        session.stop("interrupted")


_CURRENT: dict[str, LabSession] = {}


def _progress(total: int) -> Any:
    import sys
    import threading

    from rich.console import Console

    # The process's own stderr, not pytest's capture of it (`hil run` uses --capture=sys).
    console = Console(file=sys.__stderr__, highlight=False)
    lock = threading.Lock()
    done = [0]
    colours = {"passed": "green", "failed": "red", "broken": "yellow", "observed": "blue"}

    def on_done(result: dict[str, Any]) -> None:
        with lock:
            done[0] += 1
            v = result["verdict"]
            console.print(f"[{done[0]:>4}/{total}] [{colours.get(v, 'white')}]{v:<8}[/] "
                          f"{result['id']} on {result['phone']} ({result['model']}) "
                          f"{result['end'] - result['start']:.2f}s")

    return on_done


def _allure_environment(config: pytest.Config, session: LabSession) -> None:
    alluredir = getattr(config.option, "allure_report_dir", None)
    if not alluredir:
        return
    d = Path(alluredir)
    d.mkdir(parents=True, exist_ok=True)
    env = {"rig": session.rig.name, "run": session.run_id,
           "framework.revision": session.record.run["framework_revision"] if session.record
           else "unknown"}
    for lane in session.lanes.values():
        env[f"phone.{lane.spec.name}"] = (f"{lane.spec.model} {lane.spec.mac} "
                                          f"fw {lane.firmware or lane.spec.firmware}")
    (d / "environment.properties").write_text(
        "".join(f"{k}={v}\n" for k, v in env.items()))
    (d / "categories.json").write_text(json.dumps([
        {"name": "Firmware deviations (product failures)", "matchedStatuses": ["failed"]},
        {"name": "Rig faults (PDU, console, DHCP, network)", "matchedStatuses": ["broken"]},
        {"name": "Observations (not promised by the profile)", "matchedStatuses": ["skipped"],
         "messageRegex": ".*observed.*"},
    ], indent=2))


def report_case(session: LabSession, case: Case, phone: str) -> None:
    """Wait for (case, phone) in its lane and turn the verdict into the test outcome."""
    result = session.result(case.id, phone)
    _allure(session, result)
    verdict = result["verdict"]
    if verdict == "passed":
        return
    if verdict == "failed":
        pytest.fail(f"{phone} ({result['model']}, {result['firmware']}): {result['reason']}",
                    pytrace=False)
    if verdict == "observed":
        pytest.skip(f"observed (not judged): {result['reason']}")
    if verdict == "skipped":
        pytest.skip(result["reason"])
    raise RigFault(f"{phone}: {result['reason']}")


def _allure(session: LabSession, result: dict[str, Any]) -> None:
    try:
        import allure
    except ImportError:
        return
    allure.dynamic.label("model", str(result["model"]))
    allure.dynamic.label("firmware", str(result["firmware"]))
    allure.dynamic.label("mac", str(result["mac"]))
    allure.dynamic.label("profile", str(result["profile"]))
    allure.dynamic.label("row", str(result["id"]))
    allure.dynamic.label("verdict", str(result["verdict"]))
    allure.dynamic.suite(str(result["group"]))
    allure.dynamic.sub_suite(str(result["model"]))
    allure.dynamic.title(f"{result['id']} on {result['phone']} ({result['model']})")
    allure.dynamic.description(f"{result['title']}\n\nManual: {result['manual']}")
    for code, value in result["options"].items():
        allure.dynamic.parameter(f"option {code}", value)
    exp = result.get("expected") or {}
    with allure.step(f"expected (core, rule {exp.get('rule')}): firmware "
                     f"{exp.get('firmware_url')}, configuration {exp.get('config_url')}"):
        pass
    with allure.step(f"phone triggered by {result.get('trigger', '-')}; "
                     f"{len(result['observed'])} requests observed"):
        pass
    with allure.step(f"verdict {result['verdict']}: {result['reason']}"):
        pass
    types = {"expected-vs-observed": allure.attachment_type.TEXT,
             "request-log": allure.attachment_type.TEXT,
             "dhcp-transcript": allure.attachment_type.JSON,
             "console-log": allure.attachment_type.TEXT,
             "pcap": allure.attachment_type.PCAP}
    for ev in result.get("evidence", []):
        path = session.run_dir / ev["path"]
        if path.exists() and os.path.getsize(path) < 20 * 1024 * 1024:
            allure.attach.file(str(path), name=ev["kind"], attachment_type=types.get(ev["kind"]))
