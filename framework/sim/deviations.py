"""The catalogue of the virtual 400HD firmware's named deviations from the manual.

Each ``Deviation`` switches one behaviour of ``framework.sim.firmware.Faithful400HD`` away
from the Administrator's Manual 2.2.8 (LTRT-11950) or field evidence, and names the text
it breaks; those that change *when* the phone provisions do it through the plan's timed
events (framework.sim.plan). This catalogue is ``Faithful400HD.DEVIATIONS``: a firmware
class declares its own, and the rig's ``sim.phones.<name>.deviations`` are checked against
the class the rig names; ``hil sim deviations`` lists this one. Like the firmware, this
module never imports ``framework.resolution``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Deviation:
    """One way a firmware release may differ from the manual, and the manual text it breaks."""

    name: str
    changes: str
    manual: str
    #: False: ``plan().requests`` stay the faithful ones; the deviation shows only in what
    #: the phone does over time (a restart and a second cycle), not to a planner.
    in_requests: bool = True
    #: True: the deviation shows in what the phone says about itself in DHCP (options 60,
    #: 77, 55), judged in every case, not in what it requests.
    in_dhcp: bool = False


DEVIATIONS: Mapping[str, Deviation] = {d.name: d for d in (
    Deviation("mac-case-flipped",
              "<MAC> and the default <MAC>.cfg use lower-case hex digits",
              "Table 10-1 examples; field captures show UPPER case"),
    Deviation("host-case-kept",
              "the host keeps its case from the option in the URL, DNS query, Host and SNI",
              "Table 10-2 prints Audiocodes.com as audiocodes.com"),
    Deviation("model-placeholder-ignored",
              "the <MODEL> placeholder is dropped instead of replaced by the model",
              "Table 10-1, <MODEL>_<MAC>_conf.cfg example"),
    Deviation("semicolon-space-kept",
              "blanks after ';' stay part of the configuration file name",
              "Table 10-1, 'different_firmware_name.img; <MODEL>_<MAC>_conf.cfg'"),
    Deviation("config-at-server-root",
              "a configuration name is requested at the server root, not in the firmware's "
              "directory",
              "[F] http://host/420HD/420HD.img;420HD.cfg"),
    Deviation("option67-overrides-66-names",
              "Option 67 names replace file names given in Option 66",
              "Table 10-2: 'If any file name exists in Option 66, the names in Option 67 "
              "are ignored'"),
    Deviation("option67-over-bare-host-names",
              "Option 67 names replace file names given after a bare host in Option 66 "
              "(192.168.0.11/abc.img;efg.cfg); after <protocol>://host they stay ignored",
              "Table 10-2 general comment: 'If any file name exists in Option 66, the names "
              "in Option 67 are ignored'"),
    Deviation("no-default-tftp",
              "Option 66 without a protocol gives no URL (no tftp default)",
              "Table 10-2: 'When protocol is not specified, tftp is added as the default "
              "protocol'"),
    Deviation("option43-over-66",
              "Option 43 is consulted before Option 66/67",
              "10.2.3: 'Option 160 has the highest priority, following by Option 66/67, "
              "and then Option 43'"),
    Deviation("option66-over-160",
              "Option 66/67 is consulted before the URL option (160)",
              "10.2.2: 'Option 160 has the highest priority'"),
    Deviation("no-fallthrough-on-empty-160",
              "a URL option that is present but yields no URL stops provisioning from DHCP",
              "10.2.2 precedence: a source without a URL gives way to the next"),
    Deviation("url-option-override-ignored",
              "provisioning/url_option_value is ignored: Option 160 is always read",
              "provisioning/url_option_value sets the option read instead of 160"),
    Deviation("config-before-firmware",
              "the configuration file is requested before the firmware",
              "update order: firmware first, then configuration"),
    Deviation("config-never-requested",
              "only the firmware URL is requested",
              "Tables 10-1/10-2 give both a firmware and a configuration URL"),
    Deviation("firmware-only-defaults",
              "when the source names no files, only <MODEL>.img is requested (no <MAC>.cfg)",
              "Table 10-1 row 1 and Table 10-2 'File names do not exist' rows"),
    Deviation("extra-redirect-request",
              "the redirect server is queried even when DHCP gave a provisioning URL",
              "the redirect server is a fallback when no provisioning source exists"),
    Deviation("option43-tlv-ignored",
              "Option 43 is read only as a plain URL string, never as vendor sub-options",
              "10.2.3 Option 43 (vendor-encapsulated sub-option carrying the URL)"),
    Deviation("directory-url-as-file",
              "a URL ending in '/' is taken as a firmware file name (the last path "
              "segment), not a directory",
              "[F] a trailing '/' directory URL gets <MAC>.cfg appended"),
    Deviation("model-case-lowered",
              "<MODEL> in a configuration file name is the lower-cased model "
              "(440hd_<MAC>.cfg); firmware names keep the model as it is",
              "Table 10-1 example 3: <MODEL>_<MAC>_conf.cfg -> 440HD_001122334455_conf.cfg; "
              "[F] model strings vary between releases (440HDG-Rev0 in a 2.2.8 User-Agent)"),
    Deviation("late-request",
              "the configuration file is requested once more, late_request_s (default 2 s) "
              "after the cycle's other requests ended; 'Provisioning done' follows it",
              "10.2: a cycle requests the firmware, then the configuration, once each; "
              "[M] retries, periodic re-checks and random_provisioning_time (0-65535 s) "
              "make late requests a real phone's habit"),
    Deviation("trusts-any-certificate",
              "an HTTPS fetch accepts any server certificate: from an untrusted CA, "
              "expired, or for another name",
              "RFC 2818 3.1 / RFC 6125 6 (security baseline): a client must check the "
              "server's identity and refuse the connection when it does not match",
              in_requests=False),
    Deviation("reboot-after-config",
              "after a cycle that applied a configuration file the phone restarts "
              "('Restarting system.', boot, DHCP) and provisions again; that second cycle "
              "does not restart",
              "[M] after a configuration change 'the phone might reboot' (allowed, not a "
              "breach: one case then holds two DHCP and provisioning cycles); the faithful "
              "sim restarts only after installing firmware (10.2)",
              in_requests=False),
    Deviation("option77-omitted",
              "DHCP DISCOVER and REQUEST carry the model in Option 60 only, no Option 77 "
              "(user class)",
              "Admin Manual 2.2.8 chapter 10: 'the phone publishes its model name in Option "
              "fields 60 and 77'",
              in_requests=False, in_dhcp=True),
)}

#: Deviations a planner can see: they change ``plan().requests``.
REQUEST_DEVIATIONS = frozenset(d.name for d in DEVIATIONS.values() if d.in_requests)
#: Deviations in the phone's DHCP identification: every case that sees its DHCP catches them.
DHCP_DEVIATIONS = frozenset(d.name for d in DEVIATIONS.values() if d.in_dhcp)

__all__ = ["DEVIATIONS", "DHCP_DEVIATIONS", "REQUEST_DEVIATIONS", "Deviation"]
