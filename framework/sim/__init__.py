"""The simulated rig: virtual 400HD phones, an APC PDU and a terminal server in namespaces.

The framework talks to it only over the wire (DHCP, DNS, TFTP/HTTP(S)/FTP, SNMP, serial
over TCP, SSH, telnet, SIP NOTIFY check-sync, the phone's web interface), exactly as to a
real bench: a virtual phone has only the interfaces a real 400HD has. ``hil sim up`` (framework.sim.cli) starts it
as a separate process (framework.sim.bench); the virtual firmware (framework.sim.firmware)
is written independently of framework.resolution.

Imports (layer 7 of pyproject.toml's contracts): phone and the layers below it, in
practice framework.rig, framework.netns and framework.errors; never framework.resolution
(its own forbidden contract), nor bench, report, runner or anything above.
"""
