"""The one root of the framework's exceptions, and the two kinds a caller must tell apart.

Every exception class in ``framework`` derives from :class:`HilError`, so a caller (the CLI,
the pytest plugin, a benchmark) can catch "anything the framework raised on purpose" in one
``except`` without swallowing programming errors. Classes that also derived from a standard
exception before (``ValueError``, ``RuntimeError``, ``TimeoutError``...) keep it as a second
base, so existing ``except ValueError`` and friends go on catching them.

Two branches carry meaning for the verdict and for the exit code:

- :class:`InputError`: what the user gave us is wrong (rig file, options file, record file,
  YAML bounds, a bad CLI value). Reported with where it is; no case is run on it.
- :class:`RigFault`: the rig (PDU, console, DHCP, network, services) failed while a case ran.
  The case is *broken*, never *failed*: a failed verdict is the phone's fault alone.

This module is the bottom layer: it imports nothing from the framework.
"""

from __future__ import annotations

__all__ = ["HilError", "InputError", "RigFault", "first_line"]


class HilError(Exception):
    """Root of every exception the framework raises on purpose.

    Catch it where anything the framework reports should be shown to a person rather than
    as a traceback; catch a narrower class where the kind matters for the verdict.
    """


class InputError(HilError, ValueError):
    """Bad input: a rig file, an options file, a record file, YAML past its bounds, a CLI value.

    Raised before anything touches the rig; the message names the file (and key or line)
    so the user can fix it. A ``ValueError`` too, so callers of plain parsers keep working.
    """


class RigFault(HilError, RuntimeError):
    """The rig (PDU, console, DHCP, network, services) failed while a case ran.

    The case is *broken*, never *failed*: only the phone's own behaviour fails a case.
    Raised by the runner's phone adapter, the release install, the pytest plugin and
    ``hil explore`` with the underlying driver's reason. Still a ``RuntimeError`` as it
    was before it moved here, so an ``except RuntimeError`` around rig work keeps it.
    """


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its class name when it has none): what a
    one-line report shows."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
