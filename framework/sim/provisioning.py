"""One provisioning cycle of a virtual 400HD: the firmware's plan carried out on the wire.

The virtual firmware (rig ``sim.firmware``) turns the DHCP options of a lease into a plan, a
timed sequence of events (framework.sim.plan). :class:`ProvisioningCycle` runs it in order,
inside the boot that got the lease (framework.sim.phone):

* a ``Wait`` (the random provisioning time after DHCP, drawn here uniformly at each cycle)
  and a ``Retry`` (``late-request``: a request once more ``late_request_s`` later) are
  delays times ``sim.time_scale``, ended at once by power loss or a reboot;
* each request is resolved through the lease's DNS server and fetched with its protocol
  (framework.sim.fetch): a firmware image for this model at another version is installed
  and the phone reboots (Admin Manual 10.2); a configuration file for this model is applied
  to the settings (``system/type`` names the model; a file for another is refused); SIP PnP
  sends its SUBSCRIBE; the redirect server is asked;
* ``RestartAfterConfiguration`` (``reboot-after-config``): a cycle that applied a
  configuration ends with ``Restarting system.`` and a boot, unless this boot is itself
  that restart;
* ``Provisioning done`` closes a cycle that did not end in a restart.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from framework.sim.config import SimulatedPhone
from framework.sim.dhcp import Cancelled, Lease
from framework.sim.fetch import FetchError, PhoneIdentity, ProvisioningClient
from framework.sim.firmware import (
    PlannedRequest,
    RestartAfterConfiguration,
    Retry,
    VirtualFirmware,
    Wait,
)
from framework.sim.image import HEADER_SIZE, ImageError, ImageHeader, parse_header, verify_image

Say = Callable[[str], None]


class CyclePhone(Protocol):
    """What a cycle uses of its phone (framework.sim.phone.VirtualPhone)."""

    model: str
    mac: str
    ca_file: Path | None
    sim: SimulatedPhone

    @property
    def version(self) -> str: ...

    @property
    def firmware(self) -> VirtualFirmware: ...

    def settings(self) -> dict[str, str]: ...

    def apply_settings(self, values: Mapping[str, str]) -> None: ...

    def install(self, version: str) -> None: ...

    def reboot(self, after_configuration: bool = False) -> None: ...


class ProvisioningCycle:
    """One cycle on one lease; ``cancelled`` is the boot's power-loss/reboot event."""

    def __init__(self, phone: CyclePhone, cancelled: threading.Event, lease: Lease,
                 say: Say) -> None:
        self.phone = phone
        self.cancelled = cancelled
        self.lease = lease
        self.say = say

    def run(self, held: Callable[[], AbstractContextManager[None]], *,
            may_restart: bool = True) -> None:
        """The plan's events in time order. ``held()`` holds the phone while this boot is
        still current (else raises Cancelled): a reboot is only started under it."""
        phone, say = self.phone, self.say
        plan = phone.firmware.plan(self.lease.options, phone.model, phone.mac,
                                   phone.settings())
        say(f"Provisioning: {plan.summary}")
        client = ProvisioningClient(PhoneIdentity(phone.model, phone.mac, phone.version),
                                    self.lease.dns, phone.ca_file, self.cancelled,
                                    verify=getattr(phone.firmware, "verifies_certificates", True))
        applied = False
        for event in plan.events:  # in time order, all inside the cycle
            if isinstance(event, Wait | Retry):
                self._wait(event)
            if self.cancelled.is_set():
                raise Cancelled()
            if isinstance(event, RestartAfterConfiguration):
                if applied and may_restart:
                    with held():
                        say("Provisioning: configuration applied, restarting\n"
                            "Restarting system.")
                        phone.reboot(after_configuration=True)
                    raise Cancelled()
                continue
            if isinstance(event, Wait):
                continue
            request = event.request if isinstance(event, Retry) else event
            if isinstance(event, Retry):
                say(f"Provisioning: requesting {shown(request)} again")
            if request.purpose == "firmware":
                self._firmware(client, request, held)
            elif request.purpose == "configuration":
                applied = self._configuration(client, request) or applied
            elif request.purpose == "sip-pnp":
                self._sip_pnp(request)
            else:
                self._redirect(client, request)
        say("Provisioning done")

    def _wait(self, event: Wait | Retry) -> None:
        """A delay of the plan, times ``sim.time_scale``; power loss or a reboot ends it at
        once (the cycle is cancelled). A random wait is drawn now, uniformly in [0, max]."""
        sim = self.phone.sim
        scale = sim.time_scale
        if isinstance(event, Retry):  # the rig's late_request_s is already scaled
            seconds = sim.late_request_s if event.after_s is None else event.after_s * scale
        else:
            seconds = scale * (random.uniform(0, event.seconds) if event.random
                               else event.seconds)
            bound = f", at most {event.seconds * scale:g} s" if event.random else ""
            self.say(f"Provisioning: waiting {seconds:.2f} s ({event.why}{bound})")
        if self.cancelled.wait(seconds):
            raise Cancelled()

    def _firmware(self, client: ProvisioningClient, request: PlannedRequest,
                  held: Callable[[], AbstractContextManager[None]]) -> None:
        """Admin Manual 10.2: check the header; install only this model at another version."""
        phone, say, url = self.phone, self.say, shown(request)
        accepted: list[ImageHeader] = []

        def check(head: bytes) -> bool:
            try:
                header = parse_header(head)
            except ImageError as exc:
                say(f"Provisioning: firmware {url}: {exc}")
                return False
            if header.model != phone.model:
                say(f"Provisioning: firmware {url} is for {header.model}, not {phone.model}")
                return False
            if header.version == phone.version:
                say(f"Provisioning: firmware {url}: version {header.version} already installed")
                return False
            accepted.append(header)
            return True

        say(f"Provisioning: checking firmware {url}")
        try:
            image = client.fetch(request, HEADER_SIZE, check)
        except FetchError as exc:
            say(f"Provisioning: firmware {url}: {exc}")
            return
        if image is None:
            return
        try:
            header = verify_image(image)
        except ImageError as exc:
            say(f"Provisioning: firmware {url} rejected: {exc}")
            return
        with held():
            phone.install(header.version)
            say(f"Provisioning: firmware {header.version} installed, rebooting")
            phone.reboot()
        raise Cancelled()

    def _configuration(self, client: ProvisioningClient, request: PlannedRequest) -> bool:
        """Apply ``key=value`` lines; a file for another model is refused (system/type).
        True when the file was applied."""
        phone, say, url = self.phone, self.say, shown(request)
        say(f"Provisioning: fetching configuration {url}")
        try:
            body = client.fetch(request)
        except FetchError as exc:
            say(f"Provisioning: configuration {url}: {exc}")
            return False
        values: dict[str, str] = {}
        for raw in (body or b"").decode("utf-8", "replace").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
        model = values.pop("system/type", phone.model)
        if model.upper() != phone.model:
            say(f"Provisioning: configuration {url} is for {model}, not {phone.model}: ignored")
            return False
        phone.apply_settings(values)
        say(f"Provisioning: configuration {url} applied ({len(values)} settings)")
        return True

    def _sip_pnp(self, request: PlannedRequest) -> None:
        """SIP PnP: SUBSCRIBE ua-profile to 224.0.1.75:5060, TTL 1 (stays on the lab link)."""
        phone = self.phone
        me = str(self.lease.address)
        tag = f"{phone.mac[-6:].lower()}{int(time.monotonic() * 1000) % 100000}"
        message = (
            f"SUBSCRIBE sip:{phone.mac}@{request.host} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {me}:5060;branch=z9hG4bK{tag}\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{phone.mac}@{request.host}>;tag={tag}\r\n"
            f"To: <sip:{phone.mac}@{request.host}>\r\n"
            f"Call-ID: {tag}@{me}\r\n"
            f"CSeq: 1 SUBSCRIBE\r\n"
            f"Contact: <sip:{me}:5060>\r\n"
            f'Event: ua-profile;profile-type="device";vendor="AudioCodes";'
            f'model="{phone.model}";version="{phone.version}"\r\n'
            f"Accept: application/url\r\n"
            f"Expires: 0\r\n"
            f"User-Agent: {PhoneIdentity(phone.model, phone.mac, phone.version).user_agent}\r\n"
            f"Content-Length: 0\r\n\r\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(me))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((me, 5060))
            sock.sendto(message.encode(), (request.host, request.effective_port))
        self.say(f"Provisioning: SIP PnP SUBSCRIBE sent to "
                 f"{request.host}:{request.effective_port}")

    def _redirect(self, client: ProvisioningClient, request: PlannedRequest) -> None:
        say = self.say
        say(f"Provisioning: asking redirect server {request.url}")
        try:
            client.fetch(request)
        except FetchError as exc:
            say(f"Provisioning: redirect server: {exc}")
            return
        say("Provisioning: redirect server answered (no redirect support in the sim)")


def shown(request: PlannedRequest) -> str:
    """The URL for logs: an FTP password in the user info is masked."""
    if ":" in request.userinfo:
        user = request.userinfo.split(":", 1)[0]
        return PlannedRequest(request.purpose, request.scheme, request.host, request.path,
                              request.port, f"{user}:***").url
    return request.url
