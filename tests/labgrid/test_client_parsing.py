"""Reading labgrid-client's text output (captured from labgrid 26.0.1), owners and filters."""

from __future__ import annotations

import socket

import pytest

from framework.labgrid.client import (
    LabgridClient,
    LabgridError,
    LabgridMissing,
    find_tool,
    owner_pid,
    parse_reservations,
    parse_show,
    run_owner,
    split_filters,
)

SHOW_LOCKED = """\
Place 'pA':
  comment: hil rig x
  tags: model=440HD, rig=rigA
  matches:
    expA/rigA/*
  acquired: vm/root.hil-99
  acquired resources:
    expA/rigA/NetworkPowerPort/power-ph1
    expA/rigA/NetworkSerialPort/console-ph1
  created: 2026-11-26 05:29:39.236325
  changed: 2026-11-26 05:29:48.712480
  reservation: W12HH7KKVM
Acquired resource 'console-ph1' (expA/rigA/NetworkSerialPort/console-ph1):
  {'acquired': 'pA',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'proxy': 'localhost', 'proxy_required': False},
              'host': '192.0.2.251',
              'port': 7001,
              'protocol': 'raw',
              'speed': 115200}}
Acquired resource 'power-ph1' (expA/rigA/NetworkPowerPort/power-ph1):
  {'acquired': 'pA',
   'avail': False,
   'cls': 'NetworkPowerPort',
   'params': {'extra': {'proxy': 'localhost', 'proxy_required': False},
              'host': '192.0.2.250',
              'index': 1,
              'model': 'apc'}}
"""

SHOW_FREE = """\
Place 'bench-a':
  comment: hil rig bench-a: 2 phone(s)
  tags: firmware=2.2.8.61, lab=hiltg, rig=bench-a
  matches:
    exp-hiltg/bench-a/*
  acquired: None
  acquired resources:
  created: 2026-11-26 05:35:01.216502
  changed: 2026-11-26 05:35:04.198897
"""

RESERVATIONS = """\
Reservation 'W12HH7KKVM':
  owner: vm/root.hil-99
  token: W12HH7KKVM
  state: allocated
  filters:
    main: name=pA model=440HD
  allocations:
    main: pA
  created: 2026-11-26 05:29:41.334289
  timeout: 2026-11-26 05:30:41.334367
Reservation 'ABCDEFGHIJ':
  owner: other/alice
  token: ABCDEFGHIJ
  state: waiting
  filters:
    main: rig=x
  created: 2026-11-26 05:29:42.334289
  timeout: 2026-11-26 05:30:42.334367
"""


def test_show_of_a_locked_place_gives_owner_tags_and_resource_parameters() -> None:
    (place,) = parse_show(SHOW_LOCKED)
    assert place.name == "pA" and place.acquired == "vm/root.hil-99"
    assert dict(place.tags) == {"model": "440HD", "rig": "rigA"}
    assert place.matches == ("expA/rigA/*",) and place.reservation == "W12HH7KKVM"
    serial, power = place.resources
    assert (serial.exporter, serial.group, serial.cls, serial.name) == (
        "expA", "rigA", "NetworkSerialPort", "console-ph1")
    assert serial.params["port"] == 7001 and serial.available
    assert power.params["model"] == "apc" and not power.available


def test_show_of_a_free_place() -> None:
    (place,) = parse_show(SHOW_FREE)
    assert place.acquired is None and place.resources == () and place.reservation is None
    assert place.matches_tags({"lab": "hiltg", "name": "bench-a"})
    assert not place.matches_tags({"lab": "hiltg", "rig": "bench-b"})


def test_unreadable_resource_parameters_are_an_error_naming_them() -> None:
    with pytest.raises(LabgridError, match="cannot read"):
        parse_show("Place 'p':\nAcquired resource 'x' (e/g/C/x):\n  {'avail': <object>}\n")


def test_reservations() -> None:
    mine, theirs = parse_reservations(RESERVATIONS)
    assert (mine.token, mine.owner, mine.state) == ("W12HH7KKVM", "vm/root.hil-99", "allocated")
    assert dict(mine.filters) == {"name": "pA", "model": "440HD"}
    assert mine.allocations == ("pA",)
    assert theirs.state == "waiting" and theirs.allocations == ()


def test_owner_names_our_run_and_its_host() -> None:
    host = socket.gethostname()
    assert run_owner(1234).endswith(".hil-1234")
    assert owner_pid(f"{host}/{run_owner(1234)}") == 1234
    assert owner_pid(f"elsewhere/{run_owner(1234)}") is None  # other host: not ours to judge
    assert owner_pid(f"{host}/alice") is None  # a person's lock: never ours
    assert owner_pid(None) is None


@pytest.mark.parametrize("bad", ["model", "=440HD", "Model=440HD", "model=", "m=a b",
                                 "model=440HD=x"])
def test_bad_place_filters_name_the_pair(bad: str) -> None:
    with pytest.raises(ValueError, match="TAG=VALUE"):
        split_filters([bad])


def test_filters() -> None:
    assert split_filters(["model=440HD", "firmware=2.2.8.61"]) == {
        "model": "440HD", "firmware": "2.2.8.61"}


def test_missing_labgrid_and_coordinator_are_clear(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: object) -> None:
    monkeypatch.setenv("HIL_LABGRID_BIN", "/nonexistent")
    monkeypatch.setattr("framework.labgrid.client.DEFAULT_VENV", __import__("pathlib").Path(
        "/nonexistent"))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabgridMissing, match="make labgrid"):
        find_tool("labgrid-client")
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    with pytest.raises(LabgridError, match="LG_COORDINATOR"):
        LabgridClient(None)
