"""The rig file schema: lab network, PDUs, phones, consoles, credentials (pydantic v2).

A rig file describes one bench, real or simulated (rigs/sim.yaml, rigs/example-bench.yaml).
Values are validated on construction so that a bad file fails at load time naming the key
(STYLE.md, "Configuration is validated on construction"); cross-checks between sections
(unique names, outlets, addresses in the lab subnet) live in framework.rig.loader.
All records are frozen: a loaded rig is a value.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from framework.rig.interfaces import BenchSpec, SipSpec, TelnetConsoleSpec, WebSpec
from framework.rig.secrets import SecretRef
from framework.rig.shell import ShellSpec
from framework.rig.surveyed import Surveyed

__all__ = [
    "PDU_DRIVERS",
    "AnyPdu",
    "ApcSnmpPdu",
    "CommandPdu",
    "ConsoleSpec",
    "Credentials",
    "Lab",
    "LabgridPlace",
    "PduSpec",
    "PdudaemonPdu",
    "PhoneSpec",
    "PoeSnmpPdu",
    "Pool",
    "PowerRef",
    "Rig",
    "SecretRef",
    "SerialConsoleSpec",
    "SnmpV3",
    "SshConsoleSpec",
    "firmware_family",
]

#: Hardware types named by the Admin Manual (10.2.2, ``<hardware type>``); 3.x adds C-models.
PHONE_MODELS = ("405HD", "420HD", "430HD", "440HD", "445HD", "450HD")
_C_MODEL = re.compile(r"^C4\d\dHD$")


def _fail(reason: str) -> NoReturn:
    """Raise a validation error whose message is exactly ``reason``."""
    raise PydanticCustomError("rig", "{reason}", {"reason": reason})


class _Record(BaseModel):
    """Base of every rig record: immutable, and unknown keys are errors (typos fail loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- scalar types ---------------------------------------------------------------------------

def _phone_model(value: Any) -> str:
    if not isinstance(value, str):
        _fail(f"expected a 400HD model: {', '.join(PHONE_MODELS)} or C4xxHD (got {value!r})")
    name = value.strip().upper()
    if name in PHONE_MODELS or _C_MODEL.match(name):
        return name
    _fail(f"expected a 400HD model: {', '.join(PHONE_MODELS)} or C4xxHD (got {value!r})")


PhoneModel = Annotated[str, BeforeValidator(_phone_model), WithJsonSchema(
    {"type": "string", "pattern": r"^(C4\d\dHD|405HD|420HD|430HD|440HD|445HD|450HD)$",
     "description": "hardware type as in /etc/release HW_TYPE"})]

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}$")


def _mac(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        _fail(f"a MAC address must be quoted in YAML (unquoted it was read as the number {value})")
    if not isinstance(value, str) or not _MAC.match(value.strip()):
        _fail(f"expected a MAC address of 12 hex digits, separated by ':' or '-' or not at all "
              f"(got {value!r})")
    return re.sub(r"[:-]", "", value.strip()).upper()


Mac = Annotated[str, BeforeValidator(_mac), WithJsonSchema(
    {"type": "string", "pattern": r"^[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$",
     "description": "MAC address; normalised to 12 upper-case hex digits"})]

#: 2.2.x ``2.2.8.61`` and UC ``UC_3.4.6.604.1`` (the UC firmware line's SWVERSION)
_VERSION = re.compile(r"^(?:UC_)?\d+\.\d+(?:\.[0-9A-Za-z]+)*$")


def _firmware(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        _fail(f"a firmware version must be quoted in YAML (unquoted it was read as the number {value})")
    if not isinstance(value, str) or not _VERSION.match(value.strip()):
        _fail(f"expected a firmware version like 2.2.8.61 or UC_3.4.6.604.1 (got {value!r})")
    return value.strip()


FirmwareVersion = Annotated[str, BeforeValidator(_firmware), WithJsonSchema(
    {"type": "string", "pattern": _VERSION.pattern, "description": "e.g. 2.2.8.61 or UC_3.4.6.604.1 (SWVERSION)"})]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        _fail(f"expected a name of at most 32 letters, digits, '_', '.', '-' (got {value!r})")
    return value


Name = Annotated[str, BeforeValidator(_name), WithJsonSchema(
    {"type": "string", "pattern": _NAME.pattern})]

_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def _host(value: Any) -> str:
    if not isinstance(value, str) or not _HOST.match(value):
        _fail(f"expected a host name or IPv4 address (got {value!r})")
    return value


Host = Annotated[str, BeforeValidator(_host), WithJsonSchema(
    {"type": "string", "description": "host name or IPv4 address"})]
DomainName = Host


def _ifname(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[^\s/:]{1,15}$", value):
        _fail(f"expected a network interface name of 1-15 characters without '/', ':' or "
              f"spaces (got {value!r})")
    return value


InterfaceName = Annotated[str, BeforeValidator(_ifname), WithJsonSchema(
    {"type": "string", "maxLength": 15})]


def _cidr(value: Any) -> IPv4Interface:
    if not isinstance(value, str) or "/" not in value:
        _fail(f"expected an address with prefix length like 192.0.2.1/24 (got {value!r})")
    try:
        return IPv4Interface(value)
    except ValueError:
        _fail(f"expected an address with prefix length like 192.0.2.1/24 (got {value!r})")


Cidr = Annotated[IPv4Interface, BeforeValidator(_cidr), WithJsonSchema(
    {"type": "string", "description": "address/prefix, e.g. 192.0.2.1/24"})]

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


# --- lab ------------------------------------------------------------------------------------

class Pool(_Record):
    """The dynamic DHCP range for clients not given a fixed address (inclusive)."""

    start: IPv4Address
    end: IPv4Address

    @model_validator(mode="after")
    def _ordered(self) -> Pool:
        if int(self.start) > int(self.end):
            _fail(f"pool start {self.start} is after pool end {self.end}")
        return self

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPv4Address) and self.start <= address <= self.end


class Lab(_Record):
    """The lab network: where the framework's DHCP server and services listen.

    ``netns`` is set only on the simulated rig (the framework enters it for lab I/O);
    ``dns`` are the name servers handed to phones (default: the lab address), ``domain``
    the DHCP domain name, ``names`` the host names the lab DNS server answers.
    """

    netns: Name | None = None
    interface: InterfaceName
    address: Cidr
    pool: Pool
    lease_time: int = Field(default=600, ge=60, le=7 * 24 * 3600, description="seconds")
    dns: list[IPv4Address] = Field(default_factory=list)
    domain: DomainName | None = None
    names: dict[DomainName, IPv4Address] = Field(default_factory=dict)

    @property
    def network(self) -> IPv4Network:
        return self.address.network


# --- PDUs -----------------------------------------------------------------------------------

class _PduBase(_Record):
    name: Name
    outlets: int = Field(ge=1, le=1024, description="number of outlets (or PoE ports), from 1")
    timeout_s: Seconds = Field(default=2.0, description="per attempt")
    retries: int = Field(default=2, ge=0, le=10, description="extra attempts after the first")

    @property
    def lock_key(self) -> str:
        """Commands to one PDU are serialised on this key (its host, or its name)."""
        return self.name


class SnmpV3(_Record):
    """SNMPv3 USM credentials (RFC 3414); the keys are secret references, never values."""

    user: str = Field(min_length=1, max_length=32, description="USM security name")
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    auth_key: SecretRef | None = Field(default=None, description="authentication passphrase")
    priv_protocol: Literal["DES", "AES"] = Field(default="AES", description="AES is AES-128")
    priv_key: SecretRef | None = Field(default=None, description="privacy passphrase "
                                       "(needs auth_key)")

    @model_validator(mode="after")
    def _priv_needs_auth(self) -> SnmpV3:
        if self.priv_key is not None and self.auth_key is None:
            _fail("priv_key needs auth_key (SNMPv3 has no privacy without authentication)")
        return self


class _SnmpPdu(_PduBase):
    host: Host
    port: Port = 161
    community: SecretRef | None = Field(default=None, description="read-write community "
                                        "(v1/v2c)")
    snmp_version: Literal["1", "2c", "3"] = "2c"
    v3: SnmpV3 | None = Field(default=None, description="SNMPv3 user (snmp_version 3)")

    @model_validator(mode="after")
    def _credentials_match_version(self) -> _SnmpPdu:
        if self.snmp_version == "3" and self.v3 is None:
            _fail("snmp_version 3 needs v3: {user, auth_key, priv_key}")
        if self.snmp_version != "3" and self.community is None:
            _fail(f"snmp_version {self.snmp_version} needs community: {{env: NAME}}")
        return self

    @property
    def lock_key(self) -> str:
        return f"{self.host}:{self.port}"


class ApcSnmpPdu(_SnmpPdu):
    """APC Switched Rack PDU over SNMP (PowerNet-MIB): ``ap79xx`` uses sPDUOutletCtl,
    ``ap89xx`` rPDUOutletControlOutletCommand and rPDUOutletStatusOutletState."""

    driver: Literal["apc-snmp"]
    model: Literal["ap79xx", "ap89xx"] = "ap79xx"


class PoeSnmpPdu(_SnmpPdu):
    """A PoE switch: outlet N is port N of ``group`` (RFC 3621 pethPsePortAdminEnable)."""

    driver: Literal["poe-snmp"]
    group: int = Field(default=1, ge=1, description="pethPsePortGroupIndex (module/stack unit)")


class PdudaemonPdu(_PduBase):
    """A PDU behind a pdudaemon server (its HTTP API); ``pdu`` is pdudaemon's name for it."""

    driver: Literal["pdudaemon"]
    host: Host
    port: Port = 16421
    pdu: str | None = Field(default=None, description="PDU hostname in pdudaemon.conf "
                            "(default: this PDU's name)")

    @property
    def lock_key(self) -> str:
        return f"{self.host}:{self.port}/{self.pdu or self.name}"


class CommandPdu(_PduBase):
    """Any PDU driven by a command: argv templates with ``{outlet}``, ``{name}``, ``{host}``.

    No shell is involved. ``state`` prints ``on``/``off`` (or ``1``/``0``); without it the
    state is not readable. Secrets reach the command through ``env``, never argv.
    """

    driver: Literal["command"]
    host: Host | None = None
    on: list[str] = Field(min_length=1)
    off: list[str] = Field(min_length=1)
    state: list[str] | None = Field(default=None, min_length=1)
    env: dict[str, SecretRef] = Field(default_factory=dict)


AnyPdu = ApcSnmpPdu | PoeSnmpPdu | PdudaemonPdu | CommandPdu
PduSpec = Annotated[AnyPdu, Field(discriminator="driver")]

#: The PDU driver registry: driver name -> its settings record. framework.power maps the
#: same names to backends.
PDU_DRIVERS: dict[str, type[_PduBase]] = {
    cls.model_fields["driver"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (ApcSnmpPdu, PoeSnmpPdu, PdudaemonPdu, CommandPdu)
}


# --- phones ---------------------------------------------------------------------------------

class PowerRef(_Record):
    """Which PDU outlet feeds the phone."""

    pdu: Name
    outlet: int = Field(ge=1)


_SERIAL_URL = re.compile(r"^(?:/dev/\S+|(?:socket|rfc2217|loop|spy|alt|hwgrep)://\S*|COM\d+)$")


def _serial_url(value: Any) -> str:
    if not isinstance(value, str) or not _SERIAL_URL.match(value):
        _fail(f"expected a pyserial URL: /dev/ttyX, socket://HOST:PORT or "
              f"rfc2217://HOST:PORT[?ign_set_control] (got {value!r})")
    return value


class SerialConsoleSpec(_Record):
    """A serial console: a local tty or a terminal server port (pyserial ``serial_for_url``).

    Use ``rfc2217://host:port?ign_set_control`` against ser2net (LAB-NOTES.md).
    """

    url: Annotated[str, BeforeValidator(_serial_url), WithJsonSchema({"type": "string"})]
    baudrate: int = Field(default=115200, ge=300, le=4_000_000)


class SshConsoleSpec(_Record):
    """The phone's SSH server; ``host`` defaults to the phone's address.

    ``host_key_policy``: ``reject`` unknown keys, ``accept`` silently, or
    ``warn-and-record`` (log the fingerprint in the console log and accept; a key that
    changes later in the run, or differs from ``known_hosts``, is rejected).
    """

    host: Host | None = None
    port: Port = 22
    host_key_policy: Literal["reject", "accept", "warn-and-record"] = "warn-and-record"
    known_hosts: Path | None = None


class ConsoleSpec(_Record):
    """How to reach the phone's Linux shell: serial, SSH, telnet (at least one)."""

    serial: SerialConsoleSpec | None = None
    ssh: SshConsoleSpec | None = None
    telnet: TelnetConsoleSpec | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> ConsoleSpec:
        if self.serial is None and self.ssh is None and self.telnet is None:
            _fail("expected at least one console: serial, ssh or telnet")
        return self


class Credentials(_Record):
    """Shell login (the factory default is admin/1234; keep it out of the file anyway)."""

    username: str = Field(min_length=1)
    password: SecretRef


def firmware_family(version: str) -> str:
    """The behaviour-profile family of a version: ``2.2.8.61`` -> ``2.2``,
    ``UC_3.4.6.604.1`` -> ``3.4``."""
    return ".".join(version.removeprefix("UC_").split(".")[:2])


class PhoneSpec(_Record):
    """One phone on the bench: identity, expected firmware, power outlet, consoles, login."""

    name: Name
    model: PhoneModel
    mac: Mac
    address: IPv4Address
    firmware: FirmwareVersion
    power: PowerRef
    console: ConsoleSpec
    credentials: Credentials
    #: the shell dialect where it differs from the firmware family's (framework.rig.shell)
    shell: ShellSpec | None = None
    #: the phone's web interface and SIP user agent (framework.rig.interfaces)
    web: WebSpec = Field(default_factory=WebSpec)
    sip: SipSpec = Field(default_factory=SipSpec)
    surveyed: Surveyed | None = None  # written by `hil rig survey --write`

    @property
    def mac_colon(self) -> str:
        """The MAC as ``00:90:8f:00:00:01`` (interface notation)."""
        return ":".join(self.mac[i:i + 2] for i in range(0, 12, 2)).lower()

    @property
    def firmware_family(self) -> str:
        return firmware_family(self.firmware)


# --- labgrid (lab scale) --------------------------------------------------------------------

_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _tags(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        _fail(f"expected a mapping of tag -> value (got {value!r})")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key):
            _fail(f"tag {key!r}: a labgrid tag name is lower-case letters, digits and '_', "
                  "starting with a letter (at least 2 characters)")
        if isinstance(val, int | float) and not isinstance(val, bool):
            val = str(val)
        if not isinstance(val, str) or not _TAG_VALUE.match(val):
            _fail(f"tag {key}: expected a value of letters, digits, '_', '.', '-' (got {val!r})")
        out[key] = val
    return out


class LabgridPlace(_Record):
    """Where this bench lives in a labgrid lab (optional; lab scale, framework.labgrid).

    ``place`` is the labgrid place (default: the rig name); ``tags`` are set on it and are
    what ``hil lab run --places TAG=VALUE`` reserves by (``hil lab publish`` adds ``rig``,
    and ``model``/``firmware`` when every phone agrees); ``exporter`` and ``group`` name the
    exporter and its resource group in the generated exporter configuration.
    """

    place: Name | None = None
    tags: Annotated[dict[str, str], BeforeValidator(_tags)] = Field(default_factory=dict)
    exporter: Name | None = None
    group: Name | None = None


# --- the rig --------------------------------------------------------------------------------

class Rig(_Record):
    """A whole bench. ``sim`` stays raw: framework.sim.config validates it."""

    name: Name
    description: str = ""
    lab: Lab
    pdus: list[PduSpec] = Field(default_factory=list)
    phones: list[PhoneSpec] = Field(min_length=1)
    sim: dict[str, Any] | None = None
    labgrid: LabgridPlace | None = None
    #: firmware family (``"3.4"``) -> shell dialect of its phones; a phone's own wins
    shell: dict[str, ShellSpec] = Field(default_factory=dict)
    #: how cases start and the phones' timings (framework.rig.interfaces)
    bench: BenchSpec = Field(default_factory=BenchSpec)

    @model_validator(mode="after")
    def _family_shells(self) -> Rig:
        for i, p in enumerate(self.phones):  # a phone's own fields win over its family's
            if p.firmware_family in self.shell:
                family = self.shell[p.firmware_family]
                self.phones[i] = p.model_copy(update={"shell": family.under(p.shell)})
        return self

    def phone(self, name: str) -> PhoneSpec:
        """The phone called ``name`` (KeyError naming the known phones otherwise)."""
        for phone in self.phones:
            if phone.name == name:
                return phone
        raise KeyError(f"rig {self.name!r} has no phone {name!r} "
                       f"(phones: {', '.join(p.name for p in self.phones)})")

    def pdu(self, name: str) -> AnyPdu:
        """The PDU called ``name`` (KeyError naming the known PDUs otherwise)."""
        for pdu in self.pdus:
            if pdu.name == name:
                return pdu
        raise KeyError(f"rig {self.name!r} has no PDU {name!r} "
                       f"(PDUs: {', '.join(p.name for p in self.pdus) or 'none'})")

    def phone_by_mac(self, mac: str) -> PhoneSpec | None:
        """The phone with this MAC (any notation), or None: the DHCP allowlist."""
        key = re.sub(r"[^0-9A-Fa-f]", "", mac).upper()
        return next((p for p in self.phones if p.mac == key), None)
