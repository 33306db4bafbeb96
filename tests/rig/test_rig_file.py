"""The rig file: rigs/*.yaml load; every kind of bad file gives one exact, located message;
secret references resolve without ever showing a value; `hil rig` exits 2 on a bad file."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.cli import main
from framework.rig import RigError, SecretError, SecretRef, load_rig, parse_rig

ROOT = Path(__file__).resolve().parents[2]
SIM = yaml.safe_load((ROOT / "rigs" / "sim.yaml").read_text())


def test_the_shipped_rigs_load() -> None:
    sim = load_rig(ROOT / "rigs" / "sim.yaml")
    assert [p.name for p in sim.phones] == ["ph1", "ph2", "ph3", "ph4", "ph5"]
    assert (sim.phone("ph5").firmware, sim.phone("ph5").firmware_family) == (
        "UC_3.4.6.604.1", "3.4")
    assert sim.phone("ph1").mac == "00908F000001"
    assert sim.phone("ph1").mac_colon == "00:90:8f:00:00:01"
    assert sim.lab.netns == "hil-lab" and str(sim.lab.address) == "192.0.2.1/24"
    assert sim.pdu("pdu1").driver == "apc-snmp"
    assert sim.sim is not None and "phones" in sim.sim  # kept raw for framework.sim
    bench = load_rig(ROOT / "rigs" / "example-bench.yaml")
    assert {p.driver for p in bench.pdus} == {"apc-snmp", "poe-snmp"}
    assert [p.mac for p in bench.phones] == ["00908F602AAC", "00908F9D8992", "00908F5512A0",
                                             "00908F5512B4"]
    assert bench.lab.netns is None and bench.phone("exec1").console.serial is None
    assert bench.phone_by_mac("00:90:8f:55:12:a0") == bench.phone("conf1")


def test_mac_and_model_normalisation() -> None:
    data = copy.deepcopy(SIM)
    data["phones"][0].update(mac="00-90-8f-aa-bb-cc", model="c450hd")
    rig = parse_rig(yaml.safe_dump(data))
    assert (rig.phones[0].mac, rig.phones[0].model) == ("00908FAABBCC", "C450HD")


def test_uc_firmware_versions_and_the_shell_dialect_per_family() -> None:
    data = copy.deepcopy(SIM)
    data["phones"][0].update(firmware="UC_3.4.6.604.1", model="C450HD",
                             shell={"login_prompt": "C450HD login: "})
    data["shell"] = {"3.4": {"prompt": r"\[{user}@[^\] ]+ [^\]]*\]# ",
                             "login_prompt": r"\S+ login: "}}
    rig = parse_rig(yaml.safe_dump(data))
    ph1, ph2 = rig.phones[0], rig.phones[1]
    assert (ph1.firmware, ph1.firmware_family) == ("UC_3.4.6.604.1", "3.4")
    assert ph1.shell is not None and ph1.shell.login_prompt == "C450HD login: "  # its own
    assert ph1.shell.prompt == r"\[{user}@[^\] ]+ [^\]]*\]# "  # from its family
    assert ph2.firmware_family == "2.2" and ph2.shell is None


Mutation = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value
    return mutate


def drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        del node[last]
    return mutate


INLINE = ("an inline secret is not allowed: write {env: NAME} and put the value in the "
          "environment or the secrets file")
DRIVERS = "apc-snmp, poe-snmp, pdudaemon, command"

BAD_RIGS: list[tuple[str, Mutation, str]] = [
    ("outlet out of range", put("phones.2.power.outlet", 9),
     "phones[2].power.outlet: outlet 9 is out of range for PDU 'pdu1' (outlets 1..8)"),
    ("outlet zero", put("phones.2.power.outlet", 0),
     "phones[2].power.outlet: expected a number >= 1 (got 0)"),
    ("outlet not a number", put("phones.2.power.outlet", "one"),
     "phones[2].power.outlet: expected a whole number (got 'one')"),
    ("unknown pdu", put("phones.1.power.pdu", "pdu9"),
     "phones[1].power.pdu: unknown PDU 'pdu9' (PDUs in this rig: pdu1)"),
    ("outlet shared", put("phones.1.power.outlet", 1),
     "phones[1].power.outlet: outlet 1 of PDU 'pdu1' is already used by phones[0] (ph1)"),
    ("duplicate phone name", put("phones.1.name", "ph1"),
     "phones[1].name: duplicate phone name 'ph1' (also phones[0])"),
    ("duplicate MAC in another notation", put("phones.3.mac", "00-90-8f-00-00-01"),
     "phones[3].mac: duplicate MAC 00908F000001 (also phones[0], ph1)"),
    ("short MAC", put("phones.3.mac", "00:90:8F:00:00"),
     "phones[3].mac: expected a MAC address of 12 hex digits, separated by ':' or '-' or "
     "not at all (got '00:90:8F:00:00')"),
    ("MAC read as a number", put("phones.3.mac", 1122334455),
     "phones[3].mac: a MAC address must be quoted in YAML (unquoted it was read as the "
     "number 1122334455)"),
    ("unknown model", put("phones.0.model", "460HD"),
     "phones[0].model: expected a 400HD model: 405HD, 420HD, 430HD, 440HD, 445HD, 450HD or "
     "C4xxHD (got '460HD')"),
    ("address outside the subnet", put("phones.0.address", "192.0.3.11"),
     "phones[0].address: 192.0.3.11 is outside the lab subnet 192.0.2.0/24"),
    ("address inside the pool", put("phones.0.address", "192.0.2.150"),
     "phones[0].address: 192.0.2.150 is inside the DHCP pool 192.0.2.100-192.0.2.199; "
     "fixed addresses must be outside it"),
    ("address shared", put("phones.1.address", "192.0.2.11"),
     "phones[1].address: 192.0.2.11 is already used by phones[0] (ph1)"),
    ("address is the lab's", put("phones.1.address", "192.0.2.1"),
     "phones[1].address: 192.0.2.1 is already used by the lab address"),
    ("address is the PDU's", put("phones.1.address", "192.0.2.250"),
     "phones[1].address: 192.0.2.250 is already used by PDU 'pdu1'"),
    ("address is the broadcast", put("phones.1.address", "192.0.2.255"),
     "phones[1].address: 192.0.2.255 is the network or broadcast address of the lab "
     "subnet 192.0.2.0/24"),
    ("not an address", put("phones.1.address", "192.0.2.300"),
     "phones[1].address: expected an IPv4 address like 192.0.2.11 (got '192.0.2.300')"),
    ("inline password", put("phones.0.credentials.password", "hunter2"),
     f"phones[0].credentials.password: {INLINE}"),
    ("inline community", put("pdus.0.community", "private"), f"pdus[0].community: {INLINE}"),
    ("secret reference with a value", put("phones.0.credentials.password",
                                          {"env": "X", "value": "y"}),
     "phones[0].credentials.password.value: unknown key (allowed here: env)"),
    ("bad variable name", put("phones.0.credentials.password", {"env": "1BAD"}),
     "phones[0].credentials.password.env: expected an environment variable name (letters, "
     "digits, '_', not starting with a digit)"),
    ("unknown driver", put("pdus.0.driver", "apc"),
     f"pdus[0].driver: unknown PDU driver 'apc' (expected one of: {DRIVERS})"),
    ("no driver", drop("pdus.0.driver"),
     f"pdus[0].driver: required key is missing (one of: {DRIVERS})"),
    ("no PDU host", drop("pdus.0.host"), "pdus[0].host: required key is missing"),
    ("misspelt PDU key", put("pdus.0.comunity", "x"),
     "pdus[0].comunity: unknown key (allowed here: name, outlets, timeout_s, retries, host, "
     "port, community, snmp_version, v3, driver, model)"),
    ("port out of range", put("pdus.0.port", 70000),
     "pdus[0].port: expected a number <= 65535 (got 70000)"),
    ("duplicate PDU", lambda d: d["pdus"].append(dict(d["pdus"][0])),
     "pdus[1].name: duplicate PDU name 'pdu1' (also pdus[0])"),
    ("misplaced key", put("phones.0.outlet", 3),
     "phones[0].outlet: unknown key (allowed here: name, model, mac, address, firmware, "
     "power, console, credentials, shell, web, sip, surveyed)"),
    ("no console", put("phones.0.console", {}),
     "phones[0].console: expected at least one console: serial, ssh or telnet"),
    ("unknown trigger", put("bench", {"trigger": "provision"}),
     "bench.trigger: expected one of 'check-sync', 'web-reboot', 'shell-reboot' or "
     "'power-cycle' (got 'provision')"),
    ("random provisioning time out of range",
     put("bench", {"timings": {"random_provisioning_time": 70000}}),
     "bench.timings.random_provisioning_time: expected a number <= 65535 (got 70000)"),
    ("web user without password", put("phones.0.web", {"username": "admin"}),
     "phones[0].web: web: give both username and password, or neither (then the phone's "
     "credentials apply)"),
    ("bad telnet port", put("phones.0.console.telnet", {"port": 0}),
     "phones[0].console.telnet.port: expected a number >= 1 (got 0)"),
    ("bad provisioning_done regex", put("phones.0.shell", {"provisioning_done": "(("}),
     "phones[0].shell.provisioning_done: not a regular expression: missing ), unterminated "
     "subpattern at position 1 (got '((')"),
    ("bad serial URL", put("phones.0.console.serial.url", "tcp://x:1"),
     "phones[0].console.serial.url: expected a pyserial URL: /dev/ttyX, socket://HOST:PORT "
     "or rfc2217://HOST:PORT[?ign_set_control] (got 'tcp://x:1')"),
    ("bad host-key policy", put("phones.0.console.ssh.host_key_policy", "trust"),
     "phones[0].console.ssh.host_key_policy: expected one of 'reject', 'accept' or "
     "'warn-and-record' (got 'trust')"),
    ("empty user name", put("phones.0.credentials.username", ""),
     "phones[0].credentials.username: expected a non-empty string"),
    ("firmware read as a number", put("phones.0.firmware", 2.2),
     "phones[0].firmware: a firmware version must be quoted in YAML (unquoted it was read "
     "as the number 2.2)"),
    ("firmware not a version", put("phones.0.firmware", "v2"),
     "phones[0].firmware: expected a firmware version like 2.2.8.61 or UC_3.4.6.604.1 "
     "(got 'v2')"),
    ("shell prompt not a regex", put("phones.0.shell", {"prompt": "[admin@"}),
     "phones[0].shell.prompt: not a regular expression: unterminated character set at "
     "position 0 (got '[admin@')"),
    ("release key not a key", put("phones.0.shell", {"release_fields": {"model": "hw type"}}),
     "phones[0].shell.release_fields.model: expected an /etc/release key like HW_TYPE "
     "(upper case, digits, _; got 'hw type')"),
    ("lab address without prefix", put("lab.address", "192.0.2.1"),
     "lab.address: expected an address with prefix length like 192.0.2.1/24 "
     "(got '192.0.2.1')"),
    ("pool backwards", put("lab.pool", {"start": "192.0.2.199", "end": "192.0.2.100"}),
     "lab.pool: pool start 192.0.2.199 is after pool end 192.0.2.100"),
    ("pool outside the subnet", put("lab.pool", {"start": "192.0.2.100", "end": "192.0.3.10"}),
     "lab.pool: pool 192.0.2.100-192.0.3.10 is not inside the lab subnet 192.0.2.0/24"),
    ("lease too short", put("lab.lease_time", 0),
     "lab.lease_time: expected a number >= 60 (got 0)"),
    ("interface name too long", put("lab.interface", "a-very-long-interface-name"),
     "lab.interface: expected a network interface name of 1-15 characters without '/', "
     "':' or spaces (got 'a-very-long-interface-name')"),
    ("no phones", put("phones", []), "phones: expected at least 1 item(s)"),
    ("phones as a mapping", put("phones", {"ph1": {}}), "phones: expected a list (got a mapping)"),
    ("no lab", drop("lab"), "lab: required key is missing"),
    ("sim not a mapping", put("sim", [1]), "sim: expected a mapping (got a list)"),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in BAD_RIGS],
                         ids=[name for name, _, _ in BAD_RIGS])
def test_bad_rig_file_gives_one_exact_located_message(tmp_path: Path, mutate: Mutation,
                                                      expected: str) -> None:
    data = copy.deepcopy(SIM)
    mutate(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(RigError) as err:
        load_rig(path)
    message = str(err.value)
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+: {re.escape(expected)}", message), \
        message
    assert "hunter2" not in message and "private" not in message


def test_position_points_at_the_offending_value(tmp_path: Path) -> None:
    text = (ROOT / "rigs" / "sim.yaml").read_text().replace(
        "power: {pdu: pdu1, outlet: 3}", "power: {pdu: pdu1, outlet: 12}")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "outlet: 12" in t)
    column = text.splitlines()[line - 1].index("12") + 1
    path = tmp_path / "sim.yaml"
    path.write_text(text)
    with pytest.raises(RigError) as err:
        load_rig(path)
    assert str(err.value) == (f"{path}:{line}:{column}: phones[2].power.outlet: outlet 12 is "
                              f"out of range for PDU 'pdu1' (outlets 1..8)")


def test_every_problem_is_listed_one_per_line() -> None:
    data = copy.deepcopy(SIM)
    data["phones"][0]["model"] = "999HD"
    data["phones"][1]["mac"] = "zz"
    with pytest.raises(RigError) as err:
        parse_rig(yaml.safe_dump(data, sort_keys=False), "two.yaml")
    lines = str(err.value).splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == ["phones[0].model", "phones[1].mac"]


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\nlab: [1\n",
     "{f}:3:1: YAML syntax error: did not find expected ',' or ']'"),
    ("name: x\nname: y\n", "{f}:2:1: YAML syntax error: duplicate key 'name' (first defined "
                           "at line 1)"),
    ("- a\n- b\n", "{f}: expected a mapping with keys name, lab, pdus, phones (got a list)"),
    ("", "{f}: expected a mapping with keys name, lab, pdus, phones (got nothing)"),
    ("name: x\n\tlab: 1\n", "{f}:2:1: YAML syntax error: found a tab character that violates "
                            "indentation"),
])
def test_yaml_problems(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RigError) as err:
        load_rig(path)
    assert str(err.value) == expected.format(f=path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RigError, match=r"^/nonexistent/rig\.yaml: rig file not found$"):
        load_rig("/nonexistent/rig.yaml")
    with pytest.raises(RigError, match="is a directory, expected a rig file"):
        load_rig(tmp_path)


# --- secrets --------------------------------------------------------------------------------

def test_secret_from_environment_then_file(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# lab secrets\nHILT_R_A=from-file\nexport HILT_R_B = 'quoted v'\n\n")
    secrets.chmod(0o600)
    monkeypatch.setenv("HIL_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("HILT_R_A", "from-env")
    assert SecretRef(env="HILT_R_A").resolve() == "from-env"
    assert SecretRef(env="HILT_R_B").resolve() == "quoted v"
    monkeypatch.delenv("HILT_R_A")
    assert SecretRef(env="HILT_R_A").resolve() == "from-file"


def test_missing_secret_names_the_reference_and_the_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_SECRETS_FILE", str(tmp_path / "none.env"))
    with pytest.raises(SecretError) as err:
        SecretRef(env="HILT_R_NOPE").resolve()
    assert str(err.value) == (f"secret HILT_R_NOPE is not set: not in the environment and not "
                              f"in {tmp_path / 'none.env'} (the secrets file is named by "
                              f"HIL_SECRETS_FILE)")


def test_malformed_secrets_file_shows_no_content(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "s.env"
    secrets.write_text("HILT_R_X=1\nsupersecretvalue\n")
    monkeypatch.setenv("HIL_SECRETS_FILE", str(secrets))
    with pytest.raises(SecretError) as err:
        SecretRef(env="HILT_R_Y").resolve()
    assert str(err.value) == f"{secrets}:2: expected KEY=VALUE"


def test_a_reference_never_shows_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HILT_R_PW", "s3cr3t-value")
    rig = load_rig(ROOT / "rigs" / "sim.yaml")
    ref = rig.phones[0].credentials.password
    shown = " ".join([repr(ref), str(ref), repr(rig.phones[0]), rig.model_dump_json()])
    assert "s3cr3t" not in shown and "HIL_SIM_PHONE_PASSWORD" in shown


# --- the command line -----------------------------------------------------------------------

def test_cli_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rig", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "HIL 400HD rig file"
    assert set(schema["required"]) >= {"name", "lab", "phones"}
    assert "ApcSnmpPdu" in schema["$defs"] and "PhoneSpec" in schema["$defs"]


def test_cli_validate_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rig", "validate", "--rig", str(ROOT / "rigs" / "sim.yaml")]) == 0
    assert "ok: rig 'sim', 5 phone(s), 1 PDU(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlab: [1\n")
    for command in ("validate", "check"):
        assert main(["rig", command, "--rig", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err == f"hil: error: {bad}:3:1: YAML syntax error: did not find expected ',' or ']'\n"
        assert "Traceback" not in err
