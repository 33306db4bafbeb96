"""Phone settings through the phone's own configuration file (design/REAL-PHONE.md).

A real 400HD has no console command to read or write a setting: a setting changes when
the phone fetches a configuration file that says it (``system/type=<model>`` first, then
``key=value`` lines, as AudioCodes cfg files are written). So when a case needs a setting
(today ``provisioning/url_option_value=224``), or the lab serves its timings
(``provisioning/random_provisioning_time``), the lane runs one *settings cycle* first:

1. the lab serves ``/hil-settings/<MAC>/settings.cfg`` with the settings;
2. the phone's DHCP options point there, in Option 160 *and* Option 224, so the phone finds
   it whichever URL option it reads now (the lab cannot read the setting back);
3. the phone is triggered as the run's cases are, and the lab waits for that cycle (and
   the restart a configuration change may cause, then quiet for the settle window);
4. whether the phone fetched the file in that window is noted (a firmware that builds
   another path, or asks for no configuration, may not).

Fetching the file is not proof that the phone applied it: the setting's effect is proven on
the wire by the next case (its DHCP parameter request list asks for the URL option, and the
phone requests the URL from it: :func:`url_option_proof`), never by a shell read-back. A
case whose phone does not ask for its URL option is *broken* with that reason, not failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from framework.errors import RigFault
from framework.rig import PhoneSpec

__all__ = ["RANDOM_TIME", "SETTINGS_DIR", "URL_OPTION", "SettingsApplied", "apply_settings",
           "settings_file", "settings_options", "url_option_proof"]

URL_OPTION = "provisioning/url_option_value"
RANDOM_TIME = "provisioning/random_provisioning_time"
#: Where the lab serves each phone's settings file (one directory per MAC: lanes never
#: share a path, and the phone's ``<MAC>`` substitution plays no part).
SETTINGS_DIR = "/hil-settings"
#: The URL options a phone may be reading: the factory default and the matrix's other one.
SETTINGS_URL_OPTIONS = (160, 224)


@dataclass(frozen=True)
class SettingsApplied:
    """A settings cycle that went through: what was served, where, and when it was fetched."""

    settings: dict[str, str]
    url: str
    trigger: str
    ack_at: float
    #: when the phone fetched the file; None: it did not (``asked`` says what it asked for)
    fetched_at: float | None
    cycles: int
    asked: tuple[str, ...] = ()

    @property
    def unproven(self) -> str | None:
        """Why this cycle does not show the phone took the file (None: it fetched it)."""
        if self.fetched_at is not None:
            return None
        return (f"it did not fetch its settings file {self.url} after {self.trigger}; it "
                f"asked for: {', '.join(self.asked) or 'nothing'}")


def settings_file(model: str, settings: Mapping[str, str]) -> bytes:
    """The configuration file for ``settings``: ``system/type`` first (a phone refuses a
    file for another model), then one ``key=value`` line each."""
    for key, value in settings.items():
        if not key or "=" in key or any(c in key + value for c in "\r\n"):
            raise ValueError(f"setting {key!r}={value!r}: no '=' in a key, no line breaks")
    lines = [f"system/type={model}", *(f"{k}={v}" for k, v in settings.items())]
    return ("\n".join(lines) + "\n").encode()


def settings_url(lab_ip: str, spec: PhoneSpec) -> str:
    return f"http://{lab_ip}{SETTINGS_DIR}/{spec.mac}/settings.cfg"


def settings_options(lab_ip: str, spec: PhoneSpec) -> dict[int, bytes]:
    """DHCP options that lead the phone to its settings file, whatever URL option it reads:
    the directory with the file named explicitly (Table 10-1's ``<url>;<cfg name>`` form)."""
    value = f"http://{lab_ip}{SETTINGS_DIR}/{spec.mac}/;settings.cfg".encode()
    return {code: value for code in SETTINGS_URL_OPTIONS}


def apply_settings(*, spec: PhoneSpec, link: Any, stack: Any, listener: Any, lab_ip: str,
                   settings: Mapping[str, str], trigger: str) -> SettingsApplied:
    """Serve ``settings`` to the phone in its configuration file and have it fetch it (one
    provisioning cycle, and the restart it may cause). :class:`RigFault` when the trigger
    failed, the phone got no lease or its console does not answer once it is quiet. A
    phone that did not fetch the file is not judged here: the next case's DHCP request
    shows whether the setting is in effect."""
    path = f"{SETTINGS_DIR}/{spec.mac}/settings.cfg"
    url = settings_url(lab_ip, spec)
    stack.services.content.serve(path, settings_file(spec.model, settings))
    stack.dhcp.set_options(spec.mac_colon, settings_options(lab_ip, spec))
    # the case machinery's window: cycles, restarts, then quiet for the settle window
    from framework.runner.cycle import CaseWindow

    finished, acked = threading.Event(), threading.Event()

    def said_done() -> None:  # the console hint, when the rig has one (after our ACK)
        if acked.is_set():
            finished.set()
            stack.services.log.wake()
    # Once the phone is quiet, its console is checked as a case's is. That is what finds a
    # restart the settings caused when nothing on the wire shows it yet: a real phone's
    # boot outlasts the settle window, and an SSH session ends without a word. The check
    # awaits the restart (framework.phone.shell ``responsive``) and the window then
    # follows its cycle, so the next case's trigger does not meet a booting phone.
    health: list[str | None] = []

    def check(_seen: set[str]) -> None:
        health.append(link.health())

    unwatch = link.watch_provisioning_done(said_done)
    try:
        with listener:
            trigger_at = time.time()
            how = link.trigger(trigger)
            ack_at = listener.await_ack(trigger_at)
            acked.set()
            window = CaseWindow(trigger_at)
            listener.listen(window, 2, ack_at, finished=finished, on_settle=check)
    finally:
        if unwatch is not None:
            unwatch()
    if health and health[-1]:
        raise RigFault(f"after its settings cycle: {health[-1]}")
    fetched = [r for cycle in window.cycles for r in cycle.records
               if r.path.split("?", 1)[0] == path and r.outcome == "served"]
    asked = tuple(sorted({f"{r.protocol} {r.path} ({r.outcome})"
                          for cycle in window.cycles for r in cycle.records}))
    return SettingsApplied(dict(settings), url, how, ack_at,
                           float(fetched[0].time) if fetched else None, len(window.cycles),
                           asked)


def url_option_proof(transcript: Sequence[Any], url_option: int, *, since: float,
                     until: float) -> tuple[list[int] | None, str | None]:
    """The parameter request list (option 55) of the phone's last DISCOVER/REQUEST in
    [since, until], and why it does not prove the URL option setting (None: it does).
    No such message (a cycle whose DHCP the lab did not see): nothing to judge by."""
    asked = [m for m in transcript if since <= m.time <= until
             and m.message_type in ("DISCOVER", "REQUEST")]
    if not asked:
        return None, None
    prl = list(asked[-1].parameter_list)
    if not prl or url_option in prl:
        return prl, None
    return prl, (f"its DHCP parameter request list (option 55) asks for "
                 f"{', '.join(map(str, prl))} but not {url_option}: it did not take "
                 f"{URL_OPTION}={url_option}")
