"""The phone's shell dialect per firmware family: prompts, commands, banners, as data.

Only what a BusyBox shell has: login, ``/etc/release``, the interface's MAC, ``reboot``.
Re-provisioning and factory defaults go through SIP and the web interface
(framework.phone.sip, framework.phone.web), settings through the configuration file the
phone fetches, as on a real phone.

The 400HD runs a BusyBox Linux with a login on its serial console and SSH (Admin Manual,
"Management": ``[admin@420HD ~]$``, ``/etc/release`` with ``SWVERSION`` and ``HW_TYPE``).
What the simulated phone prints is in docs/CONTRACTS.md ("The virtual phone, as seen from
outside"); a family whose real prompts or commands differ gets its own row here, not an
``if`` in the driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from framework.rig.shell import ShellSpec


@dataclass(frozen=True)
class ShellDialect:
    """How one firmware family's shell looks and which commands do what."""

    family: str
    #: First words of a boot on the serial console (boot loader, kernel). The login prompt
    #: counts as boot evidence only after it, so a prompt printed before the power cut and
    #: still in transit cannot pass for the new boot. None: the family prints none.
    boot_banner: str | None = r"U-Boot|Starting kernel|Linux version"
    #: Prompts are not anchored to the end of the text received: the driver waits for the
    #: DHCP DISCOVER first, and a phone may print more after its prompt meanwhile.
    login_prompt: str = r"\S+ login: "
    password_prompt: str = r"Password: "
    login_incorrect: str = r"Login incorrect"
    #: ``{user}`` is replaced by the login name; any model and directory match, and both
    #: ``[admin@440HD ~]$ `` (2.2.x) and ``[admin@C450HD /home/ipphone]# `` (UC 3.4.6).
    shell_prompt: str = r"\[{user}@[^\] ]+ [^\]]*\][$#] "
    release_command: str = "cat /etc/release"
    #: the ``/etc/release`` keys of the model and the firmware version (real dumps also
    #: show ``BUILD_PROFILE=``; there is no ``MAC=`` line)
    release_model_field: str = "HW_TYPE"
    release_version_field: str = "SWVERSION"
    #: tried in turn for the MAC of the phone's interface: BusyBox's sysfs, then ``ip``
    mac_commands: tuple[str, ...] = ("cat /sys/class/net/eth0/address", "ip link show eth0")
    reboot_command: str = "reboot"
    reboot_banner: str = r"Restarting system\."
    #: [?] A console line the firmware prints when a provisioning cycle is over. No real
    #: phone is known to print one, so it is a hint only a rig file turns on (``shell:
    #: provisioning_done:``; the simulated phone's is in docs/CONTRACTS.md). Seen, the lab
    #: stops waiting for requests the core expects and goes to its settle window; None, or
    #: never printed (an SSH shell does not show it): the request timeout applies.
    provisioning_done: str | None = None

    def prompt_for(self, user: str) -> re.Pattern[str]:
        return re.compile(self.shell_prompt.replace("{user}", re.escape(user)))

    def with_shell(self, shell: ShellSpec | None) -> ShellDialect:
        """This dialect with the fields a rig file sets (``shell:``, framework.rig.shell)."""
        if shell is None:
            return self
        over: dict[str, object] = {}
        if shell.prompt is not None:
            over["shell_prompt"] = shell.prompt
        if shell.login_prompt is not None:
            over["login_prompt"] = shell.login_prompt
        if shell.release_fields is not None:
            over["release_model_field"] = shell.release_fields.model
            over["release_version_field"] = shell.release_fields.version
        if shell.mac_commands is not None:
            over["mac_commands"] = tuple(shell.mac_commands)
        if shell.provisioning_done is not None:
            over["provisioning_done"] = shell.provisioning_done
        return replace(self, **over)  # type: ignore[arg-type]


#: Firmware major version -> dialect. 2.x is the Admin Manual 2.2.8 phone (LTRT-11950).
#: [?] 3.x (LTRT-11973) is assumed to keep the same shell until a real 3.x bench says
#: otherwise; it is its own row so that the difference is one edit.
DIALECTS: dict[str, ShellDialect] = {
    "2": ShellDialect(family="2.x"),
    "3": ShellDialect(family="3.x"),
}


def dialect_for(version: str) -> ShellDialect:
    """The dialect of firmware ``version`` (``2.2.8.61`` -> the 2.x row,
    ``UC_3.4.6.604.1`` -> the 3.x row)."""
    major = version.removeprefix("UC_").split(".", 1)[0]
    try:
        return DIALECTS[major]
    except KeyError:
        known = ", ".join(f"{k}.x" for k in DIALECTS)
        raise LookupError(f"no shell dialect for firmware {version} (known families: "
                          f"{known})") from None
