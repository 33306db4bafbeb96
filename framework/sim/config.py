"""The ``sim:`` section of a rig file, validated, and the simulated bench it describes.

framework.rig loads the rig (lab, PDUs, phones) and keeps ``sim`` as a raw mapping; this
module validates that mapping with pydantic and cross-checks it against the rig, so a bad
sim section fails at ``hil sim up`` with one line per problem naming the file and the
key (``rigs/sim.yaml: sim.phones.ph1.deviations[0]: unknown deviation ...``).

Namespace names all derive from ``sim.prefix`` (docs/CONTRACTS.md): ``PREFIX-lab`` (must
equal ``lab.netns``), ``PREFIX-infra`` and ``PREFIX-ph-<phone>``; tests use their own
prefix so they never collide with a running ``hil`` lab.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framework.errors import InputError
from framework.rig import ApcSnmpPdu, PhoneSpec, Rig, SecretRef, key_path, load_rig
from framework.rig.secrets import SecretError, read_secrets_file, secrets_file
from framework.sim.firmware import (
    FirmwareConfigError,
    VirtualFirmware,
    load_firmware_class,
    unknown_deviations,
)

DEFAULT_FIRMWARE = "framework.sim.firmware:Faithful400HD"
RAW_PORT_BASE = 7000       # phone i (1-based, rig order): raw TCP 7000+i (CONTRACTS.md)
RFC2217_PORT_BASE = 7100   # and RFC 2217 7100+i, as ser2net would be configured


def console_ports(index: int) -> tuple[int, int]:
    """Phone ``index``'s (raw TCP, RFC 2217) ports: 7000+i/7100+i up to 99, then
    10000+i/11000+i (7000+i would meet 7100+j)."""
    if index < 100:
        return RAW_PORT_BASE + index, RFC2217_PORT_BASE + index
    return 10000 + index, 11000 + index


class SimConfigError(InputError):
    """The sim section is unusable; one line per problem, naming file and key."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimPhone(_Record):
    """Per-phone simulation knobs (``sim.phones.<name>``)."""

    deviations: list[str] = Field(default_factory=list,
                                  description="names the firmware class declares in its "
                                              "DEVIATIONS (Faithful400HD: "
                                              "framework.sim.deviations)")
    boot_time_s: float | None = Field(default=None, ge=0, le=120,
                                      description="power-on to DHCP DISCOVER; default "
                                                  "sim.boot_time_s (times sim.time_scale)")
    firmware: str | None = Field(default=None, description="firmware class for this phone")
    settings: dict[str, str] = Field(default_factory=dict,
                                     description="factory-default settings, e.g. "
                                                 "provisioning/url_option_value: '150'")
    release_deviations: dict[str, list[str]] = Field(
        default_factory=dict,
        description="installed firmware version -> extra deviations while that version runs, "
                    "e.g. {'2.2.9.1': ['mac-case-flipped']}: a release with a catalogue bug")
    late_request_s: float = Field(default=2.0, ge=0, le=600,
                                  description="deviation late-request: seconds between the "
                                              "cycle's last request and the late one "
                                              "(times sim.time_scale)")
    # Another firmware's console and interfaces (what `hil rig survey` must find out):
    prompt: str | None = Field(default=None, description="shell prompt, {user} and {model} "
                               "filled in, e.g. '{user}@{model}:~> ' (default: the "
                               "family's, [admin@440HD ~]$ )")
    release: str | None = Field(default=None, description="/etc/release, {model} and "
                                "{version} filled in, e.g. 'PRODUCT={model}\\nFW={version}\\n'")
    sip: bool = Field(default=True, description="false: the phone has no SIP user agent "
                      "(check-sync is not answered)")


class SimPdu(_Record):
    """The simulated PDU's behaviour and fault knobs (for robustness tests)."""

    reboot_delay_s: float = Field(default=1.0, ge=0, le=60,
                                  description="off time of sPDUOutletCtl = 3 (outletReboot)")
    dead_outlets: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="outlets that accept SETs but never switch")
    unreachable: bool = Field(default=False, description="the agent answers no request")


class SimSection(_Record):
    """The ``sim:`` section: how to build the simulated bench around the rig's phones."""

    prefix: str = Field(default="hil", pattern=r"^[a-z][a-z0-9-]{0,15}$",
                        description="namespace names: PREFIX-lab, PREFIX-infra, PREFIX-ph-NAME")
    terminal_server_address: IPv4Address = IPv4Address("192.0.2.251")
    boot_time_s: float = Field(default=0.3, ge=0, le=120)
    time_scale: float = Field(default=1.0, gt=0, le=1000,
                              description="multiplies every simulated delay: boot times, the "
                                          "random provisioning time, late requests; e.g. "
                                          "0.01 runs a real phone's 60 s boot in 0.6 s")
    firmware: str = DEFAULT_FIRMWARE
    ca_file: Path | None = Field(default=None, description="PEM of the lab CA the phones trust "
                                 "for HTTPS (read at each HTTPS request)")
    outlets_on_at_start: bool = True
    pdu: SimPdu = Field(default_factory=SimPdu)
    phones: dict[str, SimPhone] = Field(default_factory=dict)


@dataclass(frozen=True)
class SimulatedPhone:
    """One virtual phone: its rig entry plus what the simulation adds."""

    spec: PhoneSpec
    index: int                    # 1-based, rig order (terminal server ports)
    netns: str
    veth: str                     # its bridge port in the lab namespace
    #: power-on to DHCP DISCOVER, already times ``sim.time_scale``
    boot_time_s: float
    firmware_class: type[VirtualFirmware]
    deviations: frozenset[str]
    settings: dict[str, str]
    #: version -> deviations added while that version is installed (a buggy release)
    release_deviations: Mapping[str, frozenset[str]] = dc_field(default_factory=dict)
    #: seconds from the end of a cycle's requests to its late request (``late-request``),
    #: already times ``sim.time_scale``
    late_request_s: float = 2.0
    #: ``sim.time_scale``: the phone multiplies the firmware's own waits by it
    time_scale: float = 1.0
    #: another firmware's shell prompt and /etc/release (templates), and whether SIP runs
    prompt: str | None = None
    release: str | None = None
    sip: bool = True

    def deviations_for(self, version: str) -> frozenset[str]:
        """The deviations of the firmware while ``version`` is installed."""
        return self.deviations | self.release_deviations.get(version, frozenset())

    @property
    def raw_port(self) -> int:
        return console_ports(self.index)[0]

    @property
    def rfc2217_port(self) -> int:
        return console_ports(self.index)[1]


@dataclass(frozen=True)
class SimBench:
    """The whole simulated bench: rig, validated sim section, derived names."""

    rig: Rig
    sim: SimSection
    source: str
    phones: tuple[SimulatedPhone, ...]

    @property
    def prefix(self) -> str:
        return self.sim.prefix

    @property
    def lab_netns(self) -> str:
        return f"{self.prefix}-lab"

    @property
    def infra_netns(self) -> str:
        return f"{self.prefix}-infra"

    @property
    def namespaces(self) -> list[str]:
        return [self.lab_netns, self.infra_netns, *(p.netns for p in self.phones)]

    @property
    def pdus(self) -> list[ApcSnmpPdu]:
        return [p for p in self.rig.pdus if isinstance(p, ApcSnmpPdu)]

    def secret_refs(self) -> list[SecretRef]:
        """The secret references the simulation needs (communities, phone passwords)."""
        refs = [ref for p in self.pdus for ref in (
            p.community, *((p.v3.auth_key, p.v3.priv_key) if p.v3 else ())) if ref] + [
            p.spec.credentials.password for p in self.phones]
        return list({r.env: r for r in refs}.values())


def load_bench(path: str | Path) -> SimBench:
    """Load the rig file and its sim section (RigError / SimConfigError, one line per problem)."""
    rig = load_rig(path)
    return bench_from_rig(rig, str(path))


def bench_from_rig(rig: Rig, source: str) -> SimBench:
    """Validate ``rig.sim`` and cross-check it with the rig."""
    if rig.sim is None:
        raise SimConfigError(f"{source}: sim: this rig has no sim section, so it describes a "
                             "real bench; `hil sim` needs a simulated one (e.g. rigs/sim.yaml)")
    try:
        sim = SimSection.model_validate(rig.sim)
    except ValidationError as exc:
        raise SimConfigError("\n".join(
            f"{source}: {key_path(('sim', *e['loc']))}: {_message(e)}" for e in exc.errors())
        ) from None
    problems: list[str] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(f"{source}: {key_path(('sim', *loc))}: {message}")

    expected_lab = f"{sim.prefix}-lab"
    if rig.lab.netns != expected_lab:
        problems.append(f"{source}: lab.netns: must be {expected_lab!r} (sim.prefix "
                        f"{sim.prefix!r} + '-lab'), got {rig.lab.netns!r}")
    names = {p.name for p in rig.phones}
    for name in sim.phones:
        if name not in names:
            problem(("phones", name), f"no phone {name!r} in this rig (phones: "
                    f"{', '.join(sorted(names))})")
    for i, pdu in enumerate(rig.pdus):
        if not isinstance(pdu, ApcSnmpPdu):
            problems.append(f"{source}: pdus[{i}].driver: the sim simulates only 'apc-snmp' "
                            f"PDUs, got {pdu.driver!r}")
    for outlet in sim.pdu.dead_outlets:
        if not any(outlet <= p.outlets for p in rig.pdus):
            problem(("pdu", "dead_outlets"), f"outlet {outlet} exists on no PDU")

    classes: dict[str, type[VirtualFirmware]] = {}
    phones: list[SimulatedPhone] = []
    for index, spec in enumerate(rig.phones, start=1):
        knobs = sim.phones.get(spec.name, SimPhone())
        class_name = knobs.firmware or sim.firmware
        loc: tuple[str | int, ...] = ("phones", spec.name, "firmware") if knobs.firmware \
            else ("firmware",)
        try:
            if class_name not in classes:
                classes[class_name] = load_firmware_class(class_name)
        except FirmwareConfigError as exc:
            problem(loc, str(exc))
            continue
        cls = classes[class_name]
        # The rig's deviations must be ones the class it names declares (DEVIATIONS).
        named: list[tuple[tuple[str | int, ...], list[str]]] = [
            (("phones", spec.name, "deviations"), knobs.deviations),
            *((("phones", spec.name, "release_deviations", version), extra)
              for version, extra in knobs.release_deviations.items())]
        wrong = False
        for where, deviations in named:
            reason = unknown_deviations(cls, deviations)
            if reason:
                problem(where, f"{reason} (phone {spec.name}, firmware class {class_name})")
                wrong = True
        if wrong:
            continue
        try:  # the class may refuse a combination its DEVIATIONS allow one by one
            cls(knobs.deviations)
            for extra in knobs.release_deviations.values():
                cls(extra)
        except FirmwareConfigError as exc:
            problem(("phones", spec.name, "deviations"), f"{exc} (phone {spec.name}, "
                    f"firmware class {class_name})")
            continue
        _check_console(spec, index, sim, source, problems)
        phones.append(SimulatedPhone(
            spec=spec, index=index, netns=f"{sim.prefix}-ph-{spec.name}", veth=f"vph{index}",
            boot_time_s=sim.time_scale * (sim.boot_time_s if knobs.boot_time_s is None
                                          else knobs.boot_time_s),
            firmware_class=classes[class_name], deviations=frozenset(knobs.deviations),
            settings=dict(knobs.settings),
            release_deviations={v: frozenset(d) for v, d in knobs.release_deviations.items()},
            late_request_s=knobs.late_request_s * sim.time_scale, time_scale=sim.time_scale,
            prompt=knobs.prompt, release=knobs.release, sip=knobs.sip))
    if problems:
        raise SimConfigError("\n".join(problems))
    return SimBench(rig=rig, sim=sim, source=source, phones=tuple(phones))


def _check_console(spec: PhoneSpec, index: int, sim: SimSection, source: str,
                   problems: list[str]) -> None:
    """The rig's console URLs must point where the simulated terminal server listens."""
    serial = spec.console.serial
    if serial is None:
        return
    url = urlsplit(serial.url)
    ports = dict(zip(("socket", "rfc2217"), console_ports(index), strict=True))
    if url.scheme not in ports:
        problems.append(f"{source}: phones[{index - 1}].console.serial.url: the sim serves "
                        f"socket:// and rfc2217:// consoles, got {serial.url!r}")
        return
    want = f"{sim.terminal_server_address}:{ports[url.scheme]}"
    if f"{url.hostname}:{url.port}" != want:
        problems.append(f"{source}: phones[{index - 1}].console.serial.url: phone {index} "
                        f"({spec.name}) is served at {url.scheme}://{want}, got {serial.url!r}")


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"])


def ensure_secrets(bench: SimBench) -> list[str]:
    """Give every unset sim secret a random value in the secrets file; return their names.

    docs/CONTRACTS.md: ``hil sim up`` writes random values for unset sim secrets into the
    secrets file (mode 0600). Values are never printed or logged; only names are returned.
    """
    path = secrets_file()
    try:
        present = read_secrets_file(path)
    except SecretError as exc:
        raise SimConfigError(str(exc)) from None
    missing = [r.env for r in bench.secret_refs()
               if r.env not in os.environ and r.env not in present]
    if not missing:
        return []
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        for name in missing:
            out.write(f"{name}={secrets.token_urlsafe(12)}\n")
    return missing


__all__ = ["SimBench", "SimConfigError", "SimSection", "SimulatedPhone",
           "bench_from_rig", "ensure_secrets", "load_bench"]
