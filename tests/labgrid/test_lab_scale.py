"""Lab scale on a real labgrid lab: coordinator and exporter on loopback, two simulated
benches exported as places (their PDU as NetworkPowerPort, consoles as NetworkSerialPort,
SSH as NetworkService), a third place whose exporter never comes up.

What a lab user cares about: `hil lab publish` makes the places from the rig files;
`hil lab run` runs each matching place and merges both benches' cases into one record;
an unhealthy place is reported and skipped; two runs wanting one place take turns; Ctrl-C
and SIGTERM leave nothing locked; a SIGKILLed run's lock is cleaned by `hil lab janitor`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.labgrid.booking import PlaceBooking
from framework.labgrid.client import LabgridClient, LabgridMissing, find_tool
from framework.netns import have_privileges
from framework.sim.rigfile import sim_rig_document
from tests.labgrid.labgrid_lab import LogFollower, coordinator, exporter

ROOT = Path(__file__).resolve().parents[2]
TAG = "hiltg"
ONE_CASE = "r2-host-ip"  # one case per phone: the runs stay short

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]


@dataclass
class Lab:
    workdir: Path
    address: str
    log: LogFollower
    env: dict[str, str]
    rigs: dict[str, Path]

    def client(self, owner: str | None = None) -> LabgridClient:
        return LabgridClient(self.address, owner=owner)

    def hil(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "framework.cli", *args], cwd=ROOT,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def lab_run(self, run_id: str, *args: str) -> list[str]:
        return ["lab", "run", *args, "--reports", str(self.workdir / "reports"), "--run-id",
                run_id, *(a for r in self.rigs.values() for a in ("--rig", str(r)))]


def _write_rig(path: Path, name: str, prefix: str, exporter_name: str) -> Path:
    doc = sim_rig_document(prefix=prefix, phones=1, boot_time_s=0.2)
    doc["name"] = name
    doc["labgrid"] = {"tags": {"lab": TAG}, "exporter": exporter_name}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    try:
        find_tool("labgrid-client")
    except LabgridMissing as exc:
        pytest.fail(f"labgrid is part of the test environment: {exc}")
    work = tmp_path_factory.mktemp("labgrid")
    prefix = f"hilt-g{os.getpid() % 1000}"
    rigs = {"bench-a": _write_rig(work / "a.yaml", "bench-a", f"{prefix}a", "exp-hiltg"),
            "bench-b": _write_rig(work / "b.yaml", "bench-b", f"{prefix}b", "exp-hiltg"),
            # published, but its exporter never runs: an unhealthy place
            "bench-c": _write_rig(work / "c.yaml", "bench-c", f"{prefix}c", "exp-offline")}
    with coordinator(work / "coordinator") as (address, log):
        env = {**os.environ, "HIL_SECRETS_FILE": str(work / "secrets.env"),
               "HIL_RUN_DIR": str(work / "run"), "LG_COORDINATOR": address}
        lab = Lab(work, address, log, env, rigs)
        up: list[Path] = []
        try:
            for name in ("bench-a", "bench-b"):
                res = lab.hil("sim", "up", "--rig", str(rigs[name]), timeout=120)
                assert res.returncode == 0, res.stderr
                up.append(rigs[name])
            pub = lab.hil("lab", "publish", "--out", str(work / "lg"), "--apply",
                          *(a for r in rigs.values() for a in ("--rig", str(r))))
            assert pub.returncode == 0, pub.stderr
            with exporter(address, "exp-hiltg", work / "lg" / "exporter-exp-hiltg.yaml", log,
                          [f"{kind}-ph1" for kind in ("power", "console", "ssh")]):
                yield lab
        finally:
            for rig in up:
                lab.hil("sim", "down", "--rig", str(rig), timeout=120)


def _no_leftovers(lab: Lab) -> None:
    client = lab.client()
    assert [p.name for p in client.places() if p.acquired] == []
    assert client.reservations() == []


def test_publish_describes_each_rig_once_as_a_place(lab: Lab) -> None:
    place = lab.client().show("bench-a")
    assert place.matches == ("exp-hiltg/bench-a/*",)
    assert dict(place.tags) == {"lab": TAG, "rig": "bench-a", "model": "440HD",
                                "firmware": "2.2.8.61"}
    config = yaml.safe_load((lab.workdir / "lg" / "exporter-exp-hiltg.yaml").read_text())
    assert config["bench-a"]["power-ph1"] == {"cls": "NetworkPowerPort", "model": "apc",
                                              "host": "192.0.2.250", "index": 1}
    assert config["bench-a"]["console-ph1"]["port"] == 7001
    text = (lab.workdir / "lg" / "exporter-exp-hiltg.yaml").read_text()
    assert "community" not in text and "HIL_SIM" not in text  # no secrets, not even names
    again = lab.hil("lab", "publish", "--out", str(lab.workdir / "lg2"), "--apply",
                    "--rig", str(lab.rigs["bench-a"]))
    assert again.returncode == 0 and "place bench-a: up to date" in again.stdout


def test_lab_run_runs_every_healthy_place_and_merges_their_cases(lab: Lab) -> None:
    res = lab.hil(*lab.lab_run("both", "--places", f"lab={TAG}", "-j", "2", "-k", ONE_CASE))
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads((lab.workdir / "reports" / "both" / "certification.json").read_text())
    assert set(doc) == {"run", "phones", "cases", "summary"}
    assert {(c["place"], c["rig"], c["phone"]) for c in doc["cases"]} == {
        ("bench-a", "bench-a", "bench-a/ph1"), ("bench-b", "bench-b", "bench-b/ph1")}
    assert all(c["verdict"] == "passed" for c in doc["cases"])
    assert doc["summary"]["passed"] == 2
    places = {p["place"]: p for p in doc["run"]["places"]}
    assert places["bench-c"]["status"] == "skipped"
    assert "health check failed" in places["bench-c"]["reason"]
    assert not (lab.workdir / "reports" / "both" / "places" / "bench-c").exists()
    # the resolved rig the run used came from the place's resources
    resolved = yaml.safe_load((lab.workdir / "reports" / "both" / "rigs" / "bench-a.yaml")
                              .read_text())
    assert resolved["phones"][0]["console"]["serial"]["url"] == "socket://192.0.2.251:7001"
    assert (lab.workdir / "reports" / "both" / "certification.html").exists()
    _no_leftovers(lab)


def _acquired(log: LogFollower, place: str, start: int, what: str) -> tuple[int, str]:
    i = log.wait_for(rf"^{place}: place acquired by ", 60, what, start)
    return i, log.lines[i].split("acquired by ", 1)[1]


@pytest.mark.slow
def test_two_runs_wanting_one_place_take_turns(lab: Lab) -> None:
    mark = lab.log.mark()
    first = lab.spawn(*lab.lab_run("turn-1", "--places", "rig=bench-a", "-k", ONE_CASE,
                                   "--no-check"))
    second = lab.spawn(*lab.lab_run("turn-2", "--places", "rig=bench-a", "-k", ONE_CASE,
                                    "--no-check"))
    out = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, out
    events = [ln for ln in lab.log.lines[mark:] if re.match(r"^bench-a: place (acquired|released)",
                                                            ln)]
    assert [e.split(":")[1].split()[1] for e in events] == ["acquired", "released",
                                                            "acquired", "released"], events
    spans = []
    for run_id in ("turn-1", "turn-2"):
        doc = json.loads((lab.workdir / "reports" / run_id / "certification.json").read_text())
        (run,) = doc["run"]["runs"]
        spans.append((run["start"], run["end"]))
        assert doc["summary"]["passed"] == 1
    spans.sort()
    assert spans[0][1] <= spans[1][0], f"the runs overlapped: {spans}"
    _no_leftovers(lab)


def _parent(pid: int) -> int | None:
    try:  # /proc/PID/stat: "pid (comm) state ppid ...", comm may hold blanks
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for k in kids:
            out += [k, *_descendants(k)]
    return out


@pytest.mark.slow
def test_a_killed_runs_lock_is_cleaned_by_the_janitor(lab: Lab) -> None:
    mark = lab.log.mark()
    run = lab.spawn(*lab.lab_run("killed", "--places", "rig=bench-b", "-k", "T10"))
    _, owner = _acquired(lab.log, "bench-b", mark, "the doomed run to lock bench-b")
    assert owner.endswith(f".hil-{run.pid}")
    for pid in [*_descendants(run.pid), run.pid]:
        os.kill(pid, signal.SIGKILL)
    run.wait(timeout=10)
    client = lab.client()
    assert client.show("bench-b").acquired == owner  # nobody unlocked it
    (res,) = client.reservations()
    assert res.owner == owner
    dry = lab.hil("lab", "janitor", "--dry-run")
    assert "would unlock bench-b" in dry.stdout and client.show("bench-b").acquired == owner
    sweep = lab.hil("lab", "janitor")
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert f"unlock bench-b (owner {owner})" in sweep.stdout
    assert "cancel-reservation" in sweep.stdout
    _no_leftovers(lab)
    with PlaceBooking(lab.client(), {"name": "bench-b"}, wait_s=20) as place:
        assert place == "bench-b"  # bookable again at once
    again = lab.hil("lab", "janitor")
    assert "nothing left behind" in again.stdout
    _no_leftovers(lab)


def test_janitor_leaves_live_runs_alone(lab: Lab) -> None:
    with PlaceBooking(lab.client(), {"name": "bench-a"}, wait_s=20):
        sweep = lab.hil("lab", "janitor")
        assert "nothing left behind" in sweep.stdout
        assert lab.client().show("bench-a").acquired is not None
    _no_leftovers(lab)


def test_sigterm_during_a_run_unlocks_the_place(lab: Lab) -> None:
    mark = lab.log.mark()
    run = lab.spawn(*lab.lab_run("termed", "--places", "rig=bench-a", "-k", "T10"))
    i, _ = _acquired(lab.log, "bench-a", mark, "the run to lock bench-a")
    run.send_signal(signal.SIGTERM)
    out = run.communicate(timeout=120)[0]
    assert run.returncode == 130, out
    try:
        lab.log.wait_for(r"^bench-a: place released", 10, "bench-a to be released", i)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{out}") from None
    _no_leftovers(lab)


def test_ctrl_c_while_waiting_for_a_place_cancels_the_reservation(lab: Lab) -> None:
    holder = lab.client()
    with PlaceBooking(holder, {"name": "bench-a"}, wait_s=20):
        run = lab.spawn(*lab.lab_run("waiting", "--places", "rig=bench-a", "-k", ONE_CASE))
        waiting = _wait_for_waiting_reservation(lab, run.pid)
        assert waiting.filters == {"rig": "bench-a", "name": "bench-a"}
        run.send_signal(signal.SIGINT)
        out = run.communicate(timeout=60)[0]
        assert run.returncode == 130, out
        assert [r.owner for r in lab.client().reservations()] == [f"{_host()}/{holder.owner}"]
    _no_leftovers(lab)


def _host() -> str:
    import socket

    return os.environ.get("LG_HOSTNAME") or socket.gethostname()


def _wait_for_waiting_reservation(lab: Lab, pid: int) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for r in lab.client().reservations():
            if r.owner.endswith(f".hil-{pid}") and r.state == "waiting":
                return r
        time.sleep(0.2)
    raise TimeoutError(f"timed out after 60 s waiting for run {pid}'s reservation to wait")


# --- fencing (issue 20, item 4): framework/labgrid/fence.py ---------------------------------

def _cases(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def _await_cases(path: Path, n: int, timeout: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while len(_cases(path)) < n:
        if proc.poll() is not None:
            raise AssertionError(f"the lab run exited ({proc.returncode}) before {n} case(s) "
                                 f"were recorded in {path}: {proc.communicate()[0]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {n} case(s) in {path}")
        time.sleep(0.2)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def _alive(pids: list[int]) -> list[int]:
    from framework.labgrid.fence import pid_alive

    return [p for p in pids if pid_alive(p)]


@pytest.mark.slow
def test_sigkilled_lab_run_takes_its_hil_runs_and_their_captures_with_it(lab: Lab) -> None:
    mark = lab.log.mark()
    run = subprocess.Popen([sys.executable, "-m", "framework.cli",
                            *lab.lab_run("orphans", "--places", "rig=bench-b", "-k", "T10",
                                         "--no-check")],
                           cwd=ROOT, env=lab.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _, owner = _acquired(lab.log, "bench-b", mark, "the doomed run to lock bench-b")
    cases = lab.workdir / "reports" / "orphans" / "places" / "bench-b" / "cases.jsonl"
    _await_cases(cases, 1, 120, run)
    family = _descendants(run.pid)
    hil_runs = [p for p in family if "--hold-place" in _cmdline(p)]
    # one hil run per place; its forks (the TFTP server forks per transfer) share its
    # command line: count the processes whose parent is not one of them
    top = [p for p in hil_runs if _parent(p) not in hil_runs]
    assert len(top) == 1, [(p, _cmdline(p)) for p in family]
    assert any("tcpdump" in " ".join(_cmdline(p)) for p in family), \
        [(p, _cmdline(p)) for p in family]  # its captures are part of what must go
    os.killpg(run.pid, signal.SIGKILL)  # the whole process group of `hil lab run`
    run.communicate(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _alive(family)
    assert left == [], f"alive 5 s after the SIGKILL: {[(p, _cmdline(p)) for p in left]}"
    recorded = _cases(cases)
    assert recorded and not [c for c in recorded if c["reason"].startswith("not run")], \
        "a run whose parent died records no case it did not run (--resume runs them)"
    assert lab.client().show("bench-b").acquired == owner  # the dead run still holds it
    sweep = lab.hil("lab", "janitor")
    assert f"unlock bench-b (owner {owner})" in sweep.stdout, sweep.stdout + sweep.stderr
    _no_leftovers(lab)
    with PlaceBooking(lab.client(), {"name": "bench-b"}, wait_s=20):
        assert len(_cases(cases)) == len(recorded)  # nothing drives the freed place
    _no_leftovers(lab)


@pytest.mark.slow
def test_a_run_that_loses_its_lock_stops_and_leaves_the_new_owners_lock_alone(
        lab: Lab) -> None:
    mark = lab.log.mark()
    run = lab.spawn(*lab.lab_run("robbed", "--places", "rig=bench-a", "-k", "T10",
                                 "--no-check"))
    _, owner = _acquired(lab.log, "bench-a", mark, "the run to lock bench-a")
    cases = lab.workdir / "reports" / "robbed" / "places" / "bench-a" / "cases.jsonl"
    _await_cases(cases, 1, 120, run)
    thief = lab.client(owner="thief")
    for res in thief.reservations():  # what a person with `labgrid-client` can do
        thief.cancel_reservation(res.token)
    thief.unlock("bench-a", kick=True)
    thief.lock("bench-a")
    try:
        out = run.communicate(timeout=300)[0]
        assert run.returncode == 1, out
        assert lab.client().show("bench-a").acquired == f"{_host()}/thief", out
        assert "left alone" in out, out
        doc = json.loads((lab.workdir / "reports" / "robbed" / "places" / "bench-a" /
                          "certification.json").read_text())
        verdicts = [c["verdict"] for c in doc["cases"]]
        not_run = [c for c in doc["cases"] if c["verdict"] == "skipped"]
        assert not_run, verdicts
        # the lanes saw the kick, or the thief's lock after it
        reason = re.compile(r"not run: labgrid place bench-a is no longer locked by this run "
                            rf"\({re.escape(owner.split('/')[-1])}\): now (unlocked|locked "
                            r"by \S+/thief)$")
        assert all(reason.match(c["reason"]) for c in not_run), not_run[0]["reason"]
        first = verdicts.index("skipped")
        assert set(verdicts[first:]) == {"skipped"}, verdicts  # it stopped for good
        assert "passed" in verdicts[:first], verdicts
        (place,) = json.loads((lab.workdir / "reports" / "robbed" / "certification.json")
                              .read_text())["run"]["places"]
        assert place["exit_code"] == 4 and "lost the place's lock" in place["reason"], place
    finally:
        thief.unlock("bench-a")
    _no_leftovers(lab)
