"""The runner's view of a phone: identity read back, the case trigger, settings, evidence.

A thin adapter over the 400HD driver (framework.phone), so the runner deals in one small
interface and every rig fault arrives as :class:`RigFault` with the driver's reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from framework.errors import RigFault
from framework.rig import PhoneSpec, Rig


@dataclass(frozen=True)
class Readback:
    """What the phone says about itself over its shell (``/etc/release``, the MAC of its
    interface). Its settings cannot be read back: a real 400HD has no command for it."""

    model: str
    mac: str
    firmware: str


class PhoneLink(Protocol):
    def identity(self) -> Readback: ...

    def trigger(self, how: str) -> str: ...

    def console_excerpt(self, since: float, target: Path) -> Path | None: ...

    def health(self) -> str | None: ...

    def watch_provisioning_done(self, callback: Callable[[], None]
                                ) -> Callable[[], None] | None: ...

    def watch_restart(self, callback: Callable[[], None]) -> Callable[[], None] | None: ...

    def close(self) -> None: ...


class DriverLink:
    """:class:`PhoneLink` over ``framework.phone.Phone400HD``."""

    def __init__(self, driver: Any, faults: tuple[type[BaseException], ...]) -> None:
        self.driver = driver
        self._faults = faults

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._faults as exc:
            raise RigFault(f"{what}: {exc}") from None

    def identity(self) -> Readback:
        release = self._call("reading /etc/release", self.driver.release)
        return Readback(model=release.model, mac=release.mac, firmware=release.version)

    def trigger(self, how: str) -> str:
        """Start the phone's provisioning through an interface a real 400HD has (``how``, one
        of framework.rig.interfaces.TRIGGERS); returns ``how``. The DHCP ACK that follows
        is the caller's to await."""
        steps = {
            "check-sync": ("SIP NOTIFY check-sync", "check_sync"),
            "web-reboot": ("a reboot through the web interface", "web_reboot"),
            "shell-reboot": ("`reboot` in the shell", "reboot"),
            "power-cycle": ("a power cycle through the PDU", "power_cycle"),
        }
        if how not in steps:
            raise RigFault(f"unknown trigger {how!r} (known: {', '.join(steps)})")
        what, method = steps[how]
        self._call(what, getattr(self.driver, method))
        return how

    def health(self) -> str | None:
        """Why the phone cannot be judged right now (no power, no console), else None."""
        from framework.power import PowerStateUnreadable

        power = getattr(self.driver, "power", None)
        if power is not None:
            try:
                if power.state() is False:
                    return "its PDU outlet is off (the phone lost power)"
            except PowerStateUnreadable:
                pass
            except self._faults as exc:
                return f"its PDU does not answer: {exc}"
        if getattr(self.driver, "broken", None) is not None:
            return None  # latched: the operation that broke it says why, not the console
        responsive = getattr(self.driver, "responsive", None)
        if callable(responsive):  # an empty line: the shell (or login) answers its prompt
            problem = responsive(5.0)
            return f"its console does not answer: {problem}" if problem else None
        try:
            self.driver.run("", 5.0)
        except self._faults as exc:
            return f"its console does not answer: {str(exc).splitlines()[0]}"
        return None

    def watch_provisioning_done(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``callback`` when the phone's console says a provisioning cycle is over;
        returns how to stop watching (None: this phone cannot tell)."""
        watch = getattr(self.driver, "watch_provisioning_done", None)
        return watch(callback) if callable(watch) else None

    def watch_restart(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``callback`` when the console shows the phone restarting (reboot/boot
        banner); None: this phone's console cannot tell."""
        watch = getattr(self.driver, "watch_restart", None)
        return watch(callback) if callable(watch) else None

    def console_excerpt(self, since: float, target: Path) -> Path | None:
        excerpt = getattr(self.driver, "console_excerpt", None)
        if excerpt is None:
            return None
        with contextlib.suppress(OSError):
            text = excerpt(since)
            if text:
                target.write_text(text)
                return target
        return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.close()


def open_phone(rig: Rig, spec: PhoneSpec, console_dir: Path, *, dhcp: Any,
               boot_timeout_s: float) -> PhoneLink:
    """Connect to one phone of the rig through its PDU outlet and console."""
    from framework.console import ConsoleError
    from framework.phone import Phone400HD, PhoneError
    from framework.power import PowerError
    from framework.rig import SecretError

    faults: tuple[type[BaseException], ...] = (ConsoleError, PhoneError, PowerError,
                                               SecretError, TimeoutError, OSError)
    try:
        driver = Phone400HD.from_rig(rig, spec, console_dir, dhcp=dhcp,
                                     boot_timeout_s=boot_timeout_s)
    except faults as exc:
        raise RigFault(f"{spec.name}: {exc}") from None
    return DriverLink(driver, faults)
