"""The virtual 400HD firmware's choice of provisioning URLs, and its catalogue of deviations.

This is the part of the simulated phone that decides, from the DHCP options it received,
which firmware and configuration files it requests. It is written the way the phone's
C code would parse the strings, from the Administrator's Manual 2.2.8 (LTRT-11950,
sections 10.2.2-10.2.3, Tables 10-1 and 10-2) and field captures, and deliberately NOT
from ``framework.resolution`` (never import it): the suite compares the resolution core's
expectation with what this firmware does on the wire, so a shared bug would hide itself.

The class is pluggable: the rig names it (``sim.firmware: "package.module:ClassName"``)
and the sim builds one instance per phone with that phone's deviations. A replacement
only needs the ``VirtualFirmware`` protocol below. Example::

    fw = Faithful400HD(deviations={"mac-case-flipped"})
    plan = fw.plan({66: b"192.0.2.1"}, model="440HD", mac="00908F000001",
                   settings={"provisioning/method": "dynamic"})
    [r.url for r in plan.requests]
    # ['tftp://192.0.2.1/440HD.img', 'tftp://192.0.2.1/00908f000001.cfg']

Decisions where the manual is unclear (each documented, each reversible by a deviation):

* Host names: the manual's Table 10-2 prints ``Audiocodes.com`` in Option 66 as
  ``audiocodes.com`` in the URL, so the faithful firmware lower-cases the host when it
  builds a URL. It resolves and contacts the host of the URL it built, so the DNS query,
  HTTP ``Host`` and TLS SNI all carry the lower-cased name. (``host-case-kept`` keeps it.)
* Strings are C strings: an option value ends at its first NUL, so NUL padding at the
  end of a value is ignored; surrounding blanks and CR/LF are trimmed.
* Option 160 (and the URL option and Option 43) must name a protocol (Table 10-1 shows
  only ``<protocol>://`` forms); Option 66 without a protocol gets ``tftp`` (Table 10-2).
* A protocol other than tftp, http, https, ftp yields no URL from that source, and the
  phone falls through to the next source (10.2.2: "Option 160 has the highest priority,
  following by Option 66/67, and then Option 43").
* Names given in the URL are relative to its directory: ``http://h/420HD/420HD.img;420HD.cfg``
  requests ``/420HD/420HD.cfg`` [F]; like an RFC 3986 relative reference, a configuration
  name ``sub/x.cfg`` is below that directory and ``/x.cfg`` is at the server root. A
  trailing ``/`` is a directory with no names.
* ``<MAC>`` is 12 hex digits in UPPER case (field captures: ``00908F9D8992.cfg``).
* No provisioning source at all: SIP PnP SUBSCRIBE to 224.0.1.75:5060, then the redirect
  server ``https://redirect.audiocodes.com/<MAC>.cfg`` (the path is the sim's choice; the
  manual does not give it).

The plan is a timed sequence of events (framework.sim.plan): a ``Wait`` of up to
``provisioning/random_provisioning_time`` seconds after DHCP (uniformly random, drawn by
the phone; none when the setting is 0, the sim's default), the requests in order, and
what two deviations that change *when* the phone provisions add:

* ``late-request``: a ``Retry`` of the cycle's configuration request at the end; the phone
  makes it ``sim.phones.<name>.late_request_s`` (default 2.0) seconds after the cycle's
  other requests have finished, as a configuration retry timer firing after the cycle
  would. A plan without a configuration request gets no late request.
* ``reboot-after-config``: a ``RestartAfterConfiguration`` at the end; once a
  configuration file was applied in a cycle, the phone restarts at the end of that cycle
  and provisions again in the new boot, which does not restart again (see the phone).

``Deviation.in_requests`` tells them apart: False means ``plan().requests`` are the
faithful ones and only the phone's behaviour over time shows the deviation. A firmware
class declares its deviations in ``DEVIATIONS``; the rig's deviations are checked
against the class it names.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

# The catalogue and the plan's event types live in their own modules; they are re-exported
# here, where users look for them.
from framework.errors import HilError
from framework.sim.deviations import DEVIATIONS as DEVIATIONS
from framework.sim.deviations import DHCP_DEVIATIONS as DHCP_DEVIATIONS
from framework.sim.deviations import REQUEST_DEVIATIONS as REQUEST_DEVIATIONS
from framework.sim.deviations import Deviation as Deviation
from framework.sim.plan import DEFAULT_PORTS as DEFAULT_PORTS
from framework.sim.plan import Event as Event
from framework.sim.plan import PlannedRequest as PlannedRequest
from framework.sim.plan import ProvisioningPlan as ProvisioningPlan
from framework.sim.plan import Purpose as Purpose
from framework.sim.plan import Request as Request
from framework.sim.plan import RestartAfterConfiguration as RestartAfterConfiguration
from framework.sim.plan import Retry as Retry
from framework.sim.plan import Source as Source
from framework.sim.plan import Wait as Wait

PROTOCOLS = ("tftp", "http", "https", "ftp")
REDIRECT_HOST = "redirect.audiocodes.com"
SIP_PNP_GROUP = "224.0.1.75"

# Phone settings the firmware reads (names as in the 400HD configuration file).
SETTING_METHOD = "provisioning/method"
SETTING_URL_OPTION = "provisioning/url_option_value"
SETTING_OPTION43_SUBOPTION = "provisioning/option43_suboption"
SETTING_STATIC_FIRMWARE_URL = "provisioning/firmware/url"
SETTING_STATIC_CONFIGURATION_URL = "provisioning/configuration/url"
SETTING_RANDOM_TIME = "provisioning/random_provisioning_time"
#: ``random_provisioning_time`` bounds (3.x Administrator's Manual: 0-65535 s)
RANDOM_TIME_MAX_S = 65535
DEFAULT_SETTINGS: Mapping[str, str] = {
    SETTING_METHOD: "dynamic",
    SETTING_URL_OPTION: "160",
    SETTING_OPTION43_SUBOPTION: "1",
    # A real phone ships with 120 s; the sim's phones ship with 0 so that a cycle on the
    # sim takes milliseconds. A rig sets a real phone's value per phone
    # (sim.phones.<name>.settings), scaled down by sim.time_scale for benchmarks.
    SETTING_RANDOM_TIME: "0",
}


class FirmwareConfigError(HilError, ValueError):
    """A firmware class or deviation named in the rig does not exist."""


class VirtualFirmware(Protocol):
    """What the sim needs from a firmware class named in the rig.

    ``DEVIATIONS`` names the ways this class can depart from the manual (the rig's
    ``sim.phones.<name>.deviations`` and ``release_deviations`` are checked against it);
    ``__init__(deviations)`` gets the phone's deviation names (an unknown name must raise
    ``FirmwareConfigError``); ``plan`` gets the received options (code -> raw bytes, RFC
    3396 parts already joined), the model (``440HD``), the MAC (12 hex digits) and the
    phone's settings, and returns the cycle's events (framework.sim.plan) in time order.
    """

    DEVIATIONS: ClassVar[Mapping[str, Deviation]]

    def __init__(self, deviations: Iterable[str] = ()) -> None: ...

    def plan(self, options: Mapping[int, bytes], model: str, mac: str,
             settings: Mapping[str, str]) -> ProvisioningPlan: ...


def unknown_deviations(cls: type, names: Iterable[str]) -> str | None:
    """None when ``cls`` declares every name in ``names``; else the one-line reason."""
    known: Mapping[str, Deviation] = getattr(cls, "DEVIATIONS", {})
    unknown = sorted(set(names) - set(known))
    if not unknown:
        return None
    return (f"unknown deviation(s) {', '.join(unknown)}; known: "
            f"{', '.join(known) or 'none'}")


@dataclass(frozen=True)
class _Location:
    """A parsed provisioning location: server and file names (before placeholder expansion)."""

    scheme: str
    userinfo: str
    host: str
    port: int | None
    directory: str           # "" or "dir/sub/" (no leading '/')
    firmware: str            # "" = default name
    configuration: str       # "" = default name
    names_given: bool        # the source named a file (or ';')


def c_string(raw: bytes) -> str:
    """The option value as the firmware's C code sees it: up to the first NUL, trimmed."""
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip(" \t\r\n")


class Faithful400HD:
    """The 400HD firmware as the 2.2.8 Administrator's Manual describes it (10.2.2-10.2.3).

    Deviations from its catalogue ``DEVIATIONS`` (framework.sim.deviations) switch single
    behaviours off or on, so a test can show that the suite notices each one. A subclass
    may declare more (``DEVIATIONS = {**Faithful400HD.DEVIATIONS, ...}``).
    """

    DEVIATIONS: ClassVar[Mapping[str, Deviation]] = DEVIATIONS

    def __init__(self, deviations: Iterable[str] = ()) -> None:
        self.deviations = frozenset(deviations)
        reason = unknown_deviations(type(self), self.deviations)
        if reason:
            raise FirmwareConfigError(reason)

    def _has(self, name: str) -> bool:
        return name in self.deviations

    @property
    def sends_user_class(self) -> bool:
        """Whether DISCOVER and REQUEST carry the model in Option 77 as well as 60 (a
        firmware class without this attribute does)."""
        return not self._has("option77-omitted")

    @property
    def verifies_certificates(self) -> bool:
        """Whether an HTTPS fetch verifies the server certificate (RFC 2818 3.1)."""
        return not self._has("trusts-any-certificate")

    # -- the plan ---------------------------------------------------------------------

    def plan(self, options: Mapping[int, bytes], model: str, mac: str,
             settings: Mapping[str, str]) -> ProvisioningPlan:
        """The cycle for these options (Admin Manual 10.2.2 precedence, Tables 10-1/10-2):
        the random provisioning delay, the requests, then what the timing deviations add."""
        plan = self._plan(options, model, mac, settings)
        events: list[Event] = list(plan.events)
        if not events:
            return plan
        delay = random_provisioning_time(settings)
        if delay:
            events.insert(0, Wait(delay, "random provisioning time", random=True))
        configurations = [e for e in events
                          if isinstance(e, PlannedRequest) and e.purpose == "configuration"]
        if self._has("late-request") and configurations:
            events.append(Retry(configurations[-1]))
        if self._has("reboot-after-config"):
            events.append(RestartAfterConfiguration())
        return ProvisioningPlan(plan.source, tuple(events), plan.url_option, plan.note)

    def _plan(self, options: Mapping[int, bytes], model: str, mac: str,
              settings: Mapping[str, str]) -> ProvisioningPlan:
        mac = mac.replace(":", "").upper()
        method = settings.get(SETTING_METHOD, "dynamic").strip().lower()
        if method == "disable":
            return ProvisioningPlan(Source.DISABLED)
        if method == "static":
            return self._static(model, mac, settings)

        url_option = url_option_code(settings)
        if self._has("url-option-override-ignored"):
            url_option = 160
        sources = [Source.URL_OPTION, Source.OPTION_66_67, Source.OPTION_43]
        if self._has("option66-over-160"):
            sources = [sources[1], sources[0], sources[2]]
        if self._has("option43-over-66"):
            sources = [s for s in sources if s is not Source.OPTION_43]
            sources.insert(sources.index(Source.OPTION_66_67), Source.OPTION_43)

        for source in sources:
            if source is Source.OPTION_66_67:
                location = self._from_66_67(options)
            elif source is Source.OPTION_43:
                location = self._from_43(options, settings)
            else:
                location = self._from_url_option(options, url_option)
                if location is None and url_option in options and self._has(
                        "no-fallthrough-on-empty-160"):
                    return ProvisioningPlan(source, self._fallback(mac), url_option,
                                            note="without a usable URL (no fall-through)")
            if location is not None:
                return ProvisioningPlan(source, self._requests(location, model, mac),
                                        url_option)
        return ProvisioningPlan(Source.SIP_PNP_AND_REDIRECT, self._fallback(mac), url_option)

    # -- sources ----------------------------------------------------------------------

    def _from_url_option(self, options: Mapping[int, bytes], code: int) -> _Location | None:
        """Option 160 (or the configured URL option): Table 10-1, protocol required."""
        raw = options.get(code)
        return None if raw is None else self._parse(c_string(raw), default_scheme=None)

    def _from_66_67(self, options: Mapping[int, bytes]) -> _Location | None:
        """Option 66 server, Option 67 names (Table 10-2)."""
        server = c_string(options.get(66, b""))
        if not server:
            return None  # row 1: "Doesn't exist or empty -> No URL from Option 66/67"
        location = self._parse(server, default_scheme=None if self._has("no-default-tftp")
                               else "tftp")
        if location is None:
            return None
        names = c_string(options.get(67, b"")).lstrip("/")
        overrides = self._has("option67-overrides-66-names") or (
            self._has("option67-over-bare-host-names") and "://" not in server)
        if names and (not location.names_given or overrides):
            with_names = self._parse(f"{location.scheme}://{_authority(location)}/"
                                     f"{location.directory}{names}", default_scheme=None)
            if with_names is not None:
                return with_names
        return location

    def _from_43(self, options: Mapping[int, bytes],
                 settings: Mapping[str, str]) -> _Location | None:
        """Option 43 (10.2.3): a plain URL string, or the URL in a vendor sub-option."""
        raw = options.get(43)
        if not raw:
            return None
        if _looks_like_url(raw):
            return self._parse(c_string(raw), default_scheme=None)
        if self._has("option43-tlv-ignored"):
            return None
        wanted = _int_setting(settings, SETTING_OPTION43_SUBOPTION, 1)
        value = _suboption(raw, wanted)
        return None if value is None else self._parse(c_string(value), default_scheme=None)

    def _static(self, model: str, mac: str, settings: Mapping[str, str]) -> ProvisioningPlan:
        """``provisioning/method = static``: the configured URLs, each naming its file."""
        requests: list[PlannedRequest] = []
        static: tuple[tuple[Purpose, str], ...] = (
            ("firmware", SETTING_STATIC_FIRMWARE_URL),
            ("configuration", SETTING_STATIC_CONFIGURATION_URL))
        for purpose, key in static:
            location = self._parse(settings.get(key, "").strip(), default_scheme=None)
            if location is not None and location.firmware:
                requests.append(self._request(purpose, location,
                                              location.directory + location.firmware,
                                              model, mac))
        return ProvisioningPlan(Source.STATIC_URL, tuple(requests))

    # -- parsing (Table 10-1) ---------------------------------------------------------

    def _parse(self, text: str, default_scheme: str | None) -> _Location | None:
        """``<protocol>://<server>[/[<dir>/][<firmware>][;<configuration>]]``."""
        if "://" in text:
            scheme, rest = text.split("://", 1)
            scheme = scheme.lower()
        elif default_scheme is not None:
            scheme, rest = default_scheme, text
        else:
            return None
        if scheme not in PROTOCOLS:
            return None
        authority, _, names = rest.partition("/")
        userinfo, _, hostport = authority.rpartition("@")
        host, port = _split_port(hostport)
        if not host or port == -1:
            return None
        if not self._has("host-case-kept"):
            host = host.lower()
        firmware_part, semicolon, configuration = names.partition(";")
        if not self._has("semicolon-space-kept"):
            configuration = configuration.lstrip(" \t")
        if self._has("directory-url-as-file") and firmware_part.endswith("/"):
            firmware_part = firmware_part.rstrip("/")
        directory, _, firmware = firmware_part.rpartition("/")
        directory = f"{directory}/" if directory else ""
        return _Location(scheme, userinfo, host, port, directory, firmware, configuration,
                         names_given=bool(firmware or semicolon))

    # -- building the requests --------------------------------------------------------

    def _requests(self, location: _Location, model: str, mac: str) -> tuple[PlannedRequest, ...]:
        firmware_name = location.firmware or "<MODEL>.img"
        configuration_name = location.configuration.lstrip("/") or "<MAC>.cfg"
        at_root = location.configuration.startswith("/") or (
            self._has("config-at-server-root") and bool(location.configuration))
        configuration_dir = "" if at_root else location.directory
        firmware = self._request("firmware", location, location.directory + firmware_name,
                                 model, mac)
        configuration = self._request("configuration", location,
                                      configuration_dir + configuration_name, model, mac)
        requests = [firmware, configuration]
        if self._has("config-before-firmware"):
            requests.reverse()
        if self._has("config-never-requested") or (
                self._has("firmware-only-defaults") and not location.names_given):
            requests.remove(configuration)
        if self._has("extra-redirect-request"):
            requests.append(self._redirect(mac))
        return tuple(requests)

    def _request(self, purpose: Purpose, location: _Location, name: str, model: str,
                 mac: str) -> PlannedRequest:
        if purpose == "configuration" and self._has("model-case-lowered"):
            model = model.lower()
        return PlannedRequest(purpose, location.scheme, location.host,
                              "/" + self._expand(name, model, mac), location.port,
                              location.userinfo)

    def _expand(self, name: str, model: str, mac: str) -> str:
        """Replace ``<MODEL>`` and ``<MAC>`` (Table 10-1 example 3)."""
        mac_text = mac.lower() if self._has("mac-case-flipped") else mac.upper()
        model_text = "" if self._has("model-placeholder-ignored") else model
        return name.replace("<MODEL>", model_text).replace("<MAC>", mac_text)

    def _redirect(self, mac: str) -> PlannedRequest:
        return PlannedRequest("redirect", "https", REDIRECT_HOST,
                              "/" + self._expand("<MAC>.cfg", "", mac))

    def _fallback(self, mac: str) -> tuple[PlannedRequest, ...]:
        """No DHCP provisioning source: SIP PnP, then the redirect server."""
        return (PlannedRequest("sip-pnp", "sip", SIP_PNP_GROUP, "", 5060), self._redirect(mac))


def _authority(location: _Location) -> str:
    auth = f"{location.userinfo}@" if location.userinfo else ""
    return auth + location.host + (f":{location.port}" if location.port is not None else "")


def _split_port(hostport: str) -> tuple[str, int | None]:
    """``host[:port]``; port -1 when it is not a number in 1..65535."""
    host, colon, port = hostport.partition(":")
    if not colon:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        return host, -1
    return host, int(port)


def _looks_like_url(raw: bytes) -> bool:
    """Option 43 as a plain string: starts with letters followed by ``://``."""
    scheme, sep, _ = raw.partition(b"://")
    return bool(sep) and scheme.isalpha() and len(scheme) <= 8


def _suboption(raw: bytes, code: int) -> bytes | None:
    """The value of vendor sub-option ``code`` in an Option 43 TLV list (RFC 2132 8.4)."""
    i = 0
    while i < len(raw):
        sub = raw[i]
        if sub == 0:  # pad
            i += 1
            continue
        if sub == 255:  # end
            return None
        if i + 1 >= len(raw):
            return None
        length = raw[i + 1]
        value = raw[i + 2:i + 2 + length]
        if len(value) < length:
            return None  # truncated TLV: the firmware's parser gives up
        if sub == code:
            return value
        i += 2 + length
    return None


def _int_setting(settings: Mapping[str, str], key: str, default: int) -> int:
    value = settings.get(key, "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 255 else default


def random_provisioning_time(settings: Mapping[str, str]) -> int:
    """``provisioning/random_provisioning_time``: the most seconds the phone waits after
    DHCP before it asks (0..65535; another value is ignored: the sim's default, 0)."""
    value = settings.get(SETTING_RANDOM_TIME, "").strip()
    return int(value) if value.isdigit() and int(value) <= RANDOM_TIME_MAX_S else 0


def url_option_code(settings: Mapping[str, str]) -> int:
    """The DHCP option the phone reads its URL from (``provisioning/url_option_value``,
    1..254, default 160); the DHCP client also asks for it in Option 55."""
    return _int_setting(settings, SETTING_URL_OPTION, 160)


def load_firmware_class(spec: str) -> type[VirtualFirmware]:
    """Import ``package.module:ClassName`` (the rig's ``sim.firmware``)."""
    module_name, colon, class_name = spec.partition(":")
    if not colon or not module_name or not class_name:
        raise FirmwareConfigError(f"firmware {spec!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FirmwareConfigError(f"firmware module {module_name!r} cannot be imported: {exc}") \
            from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "plan", None)):
        raise FirmwareConfigError(f"{spec!r} is not a firmware class with a plan() method")
    if not isinstance(getattr(cls, "DEVIATIONS", {}), Mapping):
        raise FirmwareConfigError(f"{spec!r}: DEVIATIONS must map names to Deviation")
    return cls
