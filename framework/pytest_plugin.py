"""The pytest plugin: `pytest testcases --rig FILE` runs every case on every phone.

Thin over :mod:`framework.runner.session`. Its options are generated from
framework.runner.options.RunOptions (the declaration ``hil run`` uses too). The rig is
loaded once per run, when the phones are first needed to parametrize the cases (or given
by ``hil run``, which loaded it already: :class:`GivenRun`).

The run starts when pytest's test loop starts (``pytest_runtestloop``), outside any test
and so outside pytest-timeout's per-test limit: the lab session starts, the release of
``--firmware``/``--restore`` is installed (framework.release.install.prepare), and every
(case, phone) item left after selection goes to its phone's lane, all lanes at once. A
rig that cannot start ends the run before any case with exit 3, a release that cannot be
used with exit 2. Each test item then waits for its own result and reports it:

- *passed* -> the test passes;
- *failed* -> ``pytest.fail`` (Allure: failed, a product failure);
- *broken* -> :class:`RigFault` raised (Allure: broken, a rig fault);
- *observed* (the profile does not promise this row) -> skipped with the observation.

Top layer: imports the runner and the release, never imported by them.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from framework.errors import RigFault
from framework.records import CaseResult, assertion_verdict
from framework.runner.catalogue import Case
from framework.runner.lane import Done
from framework.runner.options import FlagSpec, OptionError, RunOptions, run_flags
from framework.runner.session import LabSession

if TYPE_CHECKING:
    from framework.rig import Rig

_ITEMS_KEY = pytest.StashKey[list[tuple[Case, str]]]()
_RUN_KEY = pytest.StashKey[tuple[RunOptions, "Rig"]]()
_PHONES_KEY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hil", "400HD hardware-in-the-loop lab")
    for spec in run_flags():
        g.addoption(spec.name, **_addoption_kwargs(spec))
    g.addoption("--hil-progress", action="store_true",
                help="print one line per finished case as lanes finish them")


def _addoption_kwargs(spec: FlagSpec) -> dict[str, Any]:
    """``spec`` as argparse needs it; values stay None when not given, so that
    :meth:`RunOptions.from_flags` applies the field's own default."""
    kw: dict[str, Any] = {"dest": spec.dest, "help": spec.help}
    if spec.switch:
        kw["action"] = "store_true"
        return kw
    kw.update(default=None, type=float if spec.type is float else str)
    if spec.repeatable:
        kw["action"] = "append"
    if spec.choices:
        kw["choices"] = spec.choices
    if spec.metavar:
        kw["metavar"] = spec.metavar
    return kw


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil_case(case): a provisioning case run on the rig")
    config.addinivalue_line("markers",
                            "needs(capability): skip on rigs without that capability")


class GivenRun:
    """A plugin object for ``pytest.main(..., plugins=[GivenRun(options, rig)])``: the run's
    options and its already-loaded rig, used instead of this plugin's flags (``hil run``
    checked both before pytest started; the rig file is read once)."""

    def __init__(self, options: RunOptions, rig: Rig) -> None:
        self.options = options
        self.rig = rig

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[_RUN_KEY] = (self.options, self.rig)


def _run(config: pytest.Config) -> tuple[RunOptions, Rig]:
    """This run's options and rig: given by ``hil run``, or from the flags (the rig file
    loaded here, once)."""
    given = config.stash.get(_RUN_KEY, None)
    if given is not None:
        return given
    from framework.report.signing import KeyFileError, load_private_key
    from framework.rig import RigError, load_rig

    try:
        options = RunOptions.from_flags(vars(config.option))
        rig = load_rig(options.rig_path)
        if options.sign is not None:
            load_private_key(str(options.sign))  # refused before the lab starts
    except (OptionError, RigError, KeyFileError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_RUN_KEY] = (options, rig)
    return options, rig


def _phones(config: pytest.Config) -> list[str]:
    options, rig = _run(config)
    try:
        return options.phone_names(rig)
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_phone" in metafunc.fixturenames:
        phones = metafunc.config.stash.get(_PHONES_KEY, None)
        if phones is None:
            phones = _phones(metafunc.config)
            metafunc.config.stash[_PHONES_KEY] = phones
        metafunc.parametrize("hil_phone", phones, ids=phones)


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


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """The run around pytest's test loop: lab started, release installed and cases
    scheduled before the first item; stopped after the last (``interrupted`` on Ctrl-C or
    ``pytest.exit``). Nothing starts without (case, phone) items, with ``--collect-only``,
    or when collection failed (the loop stops at once then)."""
    config = session.config
    pairs = config.stash.get(_ITEMS_KEY, [])
    if (not pairs or config.option.collectonly
            or (session.testsfailed and not config.option.continue_on_collection_errors)):
        return (yield)
    lab = _start(config, pairs)
    status = "finished"  # also after -x or --maxfail: the run ended early, not interrupted
    try:
        return (yield)
    except (KeyboardInterrupt, pytest.exit.Exception):
        status = "interrupted"
        raise
    finally:
        lab.stop(status)


def _start(config: pytest.Config, pairs: list[tuple[Case, str]]) -> LabSession:
    """Start the lab session, install the release if asked, schedule ``pairs``; refuse
    the run (exit 3: rig, exit 2: release) when that cannot be done."""
    options, rig = _run(config)
    options = options.model_copy(update={"phones": config.stash.get(_PHONES_KEY, None)})
    session = LabSession(options, rig=rig)
    from framework.labgrid.fence import active_guard

    session.guard = active_guard()  # lab scale: stop when the place's lock is lost
    _CURRENT["session"] = session
    try:
        session.start()
    except RigFault as exc:
        _refuse(config, f"rig not usable: {exc}", returncode=3)
    if options.firmware or options.restore:
        from framework.release import ReleaseError
        from framework.release.install import prepare

        try:
            prepare(session, list(options.firmware), restore=options.restore)
        except ReleaseError as exc:
            session.stop("failed-to-start")
            _refuse(config, f"release not usable: {exc}", returncode=2)
    session.schedule(pairs, on_done=_progress(len(pairs)) if config.getoption("--hil-progress")
                     else None)
    _allure_environment(config, session)
    return session


@pytest.fixture(scope="session")
def hil_lab() -> LabSession:
    """The lab session of this run, started with every collected case scheduled in its
    lane (by :func:`pytest_runtestloop`, before the first test)."""
    session = _CURRENT.get("session")
    if session is None:
        raise RigFault("no lab session: this test is not one of the run's (case, phone) items")
    return session


_REFUSED: dict[str, str] = {}


def forget_refusal() -> None:
    """A new run in this process: an earlier run's refusal is not this one's."""
    _REFUSED.clear()


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
    """Ctrl-C while the run starts (e.g. during the release install): the record says
    'interrupted' (once the test loop runs, its wrapper stops the session)."""
    session = _CURRENT.get("session")
    if session is not None:
        session.stop("interrupted")


_CURRENT: dict[str, LabSession] = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A plain ``pytest testcases`` run ends with its MANIFEST.json (after junit.xml),
    signed with ``--sign KEY``; `hil run` writes it itself, after its renderings."""
    lab = _CURRENT.get("session")
    plugins = session.config.pluginmanager.get_plugins()
    if lab is None or any(isinstance(p, GivenRun) for p in plugins):
        return
    from framework.records import RecordError, load_record
    from framework.report import manifest
    from framework.report.allure import amend_results
    from framework.report.signing import load_private_key

    sign = lab.options.sign
    alluredir = getattr(session.config.option, "allure_report_dir", None)
    try:
        if alluredir:  # the record's times, parameters and observed status (issue 17)
            amend_results(Path(alluredir), load_record(lab.run_dir))
        manifest.write(lab.run_dir, load_private_key(str(sign)) if sign else None)
    except (RecordError, OSError):
        return  # no record (the run was refused): nothing to list


def _progress(total: int) -> Done:
    import sys
    import threading

    from rich.console import Console

    # The process's own stderr, not pytest's capture of it (`hil run` uses --capture=sys).
    console = Console(file=sys.__stderr__, highlight=False)
    lock = threading.Lock()
    done = [0]
    colours = {"passed": "green", "failed": "red", "broken": "yellow", "observed": "blue"}

    def on_done(case: CaseResult) -> None:
        with lock:
            done[0] += 1
            v = case.verdict
            console.print(f"[{done[0]:>4}/{total}] [{colours.get(v, 'white')}]{v:<8}[/] "
                          f"{case.id} on {case.phone} ({case.model}) "
                          f"{case.end - case.start:.2f}s")

    return on_done


def _allure_environment(config: pytest.Config, session: LabSession) -> None:
    alluredir = getattr(config.option, "allure_report_dir", None)
    if not alluredir:
        return
    d = Path(alluredir)
    d.mkdir(parents=True, exist_ok=True)
    env = {"rig": session.rig.name, "run": session.run_id,
           "framework.revision": session.record.run.framework_revision if session.record
           else "unknown"}
    for lane in session.lanes.values():
        env[f"phone.{lane.spec.name}"] = (f"{lane.spec.model} {lane.spec.mac} "
                                          f"fw {lane.firmware or lane.spec.firmware}")
    (d / "environment.properties").write_text(
        "".join(f"{k}={v}\n" for k, v in env.items()))
    from framework.report.allure import write_categories

    write_categories(d)


def report_case(session: LabSession, case: Case, phone: str) -> None:
    """Wait for (case, phone) in its lane and turn the verdict into the test outcome."""
    result = session.result(case.id, phone)
    _allure(session, result)
    verdict = result.verdict
    if verdict == "passed":
        return
    if verdict == "failed":
        pytest.fail(f"{phone} ({result.model}, {result.firmware}): {result.reason}",
                    pytrace=False)
    if verdict == "observed":
        pytest.skip(f"observed (not judged): {result.reason}")
    if verdict == "skipped":
        pytest.skip(result.reason)
    raise RigFault(f"{phone}: {result.reason}")


def _allure(session: LabSession, result: CaseResult) -> None:
    try:
        import allure
    except ImportError:
        return
    from framework.report.allure import labels

    shown = labels(result)  # the tree, the manual's structure, severity, tags (issue 17)
    allure.dynamic.parent_suite(shown["parent_suite"])
    allure.dynamic.suite(shown["suite"])
    allure.dynamic.sub_suite(shown["sub_suite"])
    allure.dynamic.epic(shown["epic"])
    allure.dynamic.feature(shown["feature"])
    allure.dynamic.story(shown["story"])
    allure.dynamic.severity(allure.severity_level(shown["severity"]))
    allure.dynamic.tag(*shown["tags"])
    if shown["link"] is not None:
        name, url = shown["link"]
        allure.dynamic.link(url, name=name)
    for name, value in (("phone", result.phone), ("model", result.model),
                        ("firmware", result.firmware), ("mac", result.mac),
                        ("profile", result.profile), ("row", result.id),
                        ("verdict", result.verdict)):
        allure.dynamic.label(name, str(value))
    allure.dynamic.title(f"{result.id} on {result.phone} ({result.model})")
    allure.dynamic.description(f"{result.title}\n\nManual: {result.manual}")
    exp = result.expected or {}
    with allure.step(f"expected (core, rule {exp.get('rule')}): firmware "
                     f"{exp.get('firmware_url')}, configuration {exp.get('config_url')}"):
        pass
    with allure.step(f"phone triggered by {result.trigger or '-'}; "
                     f"{len(result.observed)} requests observed"):
        pass
    for a in result.assertions or []:  # each expectation next to its ground (issue 16)
        with allure.step(f"{assertion_verdict(result, a)}: {a.what} = {a.expected} "
                         f"[{a.ground.kind}: {a.ground.source}: \"{a.ground.quote}\"]"
                         + ("" if a.holds else f": {a.detail}")):
            pass
    for note in result.notes or []:
        with allure.step(f"note: {note}"):
            pass
    agreement = ""
    if result.verdict == "observed" and result.matches_core is not None:
        agreement = " (matches the core)" if result.matches_core else " (differs from the core)"
    with allure.step(f"verdict {result.verdict}{agreement}: {result.reason}"):
        pass
    types = {"expected-vs-observed": allure.attachment_type.TEXT,
             "request-log": allure.attachment_type.TEXT,
             "dhcp-transcript": allure.attachment_type.JSON,
             "console-log": allure.attachment_type.TEXT,
             "pcap": allure.attachment_type.PCAP}
    for ev in result.evidence:
        path = session.run_dir / ev.path
        if path.exists() and os.path.getsize(path) < 20 * 1024 * 1024:
            allure.attach.file(str(path), name=ev.kind, attachment_type=types.get(ev.kind))
