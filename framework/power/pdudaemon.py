"""A PDU behind pdudaemon, through its HTTP listener.

``GET /power/control/{on,off}?hostname=PDU&port=N&delay=0``: 200 means the request was
queued, 503 that pdudaemon refused it (pdudaemon README, "Making a power control
request"). pdudaemon runs commands asynchronously and has no state query, so
``power_get`` returns None; the phone driver detects boot by evidence anyway.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from framework.power.outlet import PowerBackendError
from framework.rig.model import PdudaemonPdu

# Lab traffic must never go through an office proxy named in the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def power_set(pdu: PdudaemonPdu, outlet: int, on: bool, timeout: float) -> None:
    query = urllib.parse.urlencode({"hostname": pdu.pdu or pdu.name, "port": outlet,
                                    "delay": 0})
    url = f"http://{pdu.host}:{pdu.port}/power/control/{'on' if on else 'off'}?{query}"
    try:
        with _opener.open(url, timeout=timeout) as reply:
            reply.read()
    except urllib.error.HTTPError as exc:
        raise PowerBackendError(f"pdudaemon refused {url} (HTTP {exc.code})",
                                retryable=exc.code >= 500 and exc.code != 503) from None
    except urllib.error.URLError as exc:
        raise PowerBackendError(f"pdudaemon at {pdu.host}:{pdu.port} unreachable: "
                                f"{exc.reason}") from None


def power_get(pdu: PdudaemonPdu, outlet: int, timeout: float) -> None:
    return None
