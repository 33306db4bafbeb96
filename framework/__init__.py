"""Hardware-in-the-loop lab for AudioCodes 400HD DHCP provisioning."""

__version__ = "0.1.0"
