"""A net-snmp ``pass_persist`` handler serving one writable INTEGER table (test peer).

Run by snmpd as ``pass_persist BASE python outlet_agent.py STATE.json``. STATE.json maps
an index suffix (``"3"`` or ``"1.3"``) to its INTEGER value; SETs write the file back and
append ``[suffix, value]`` to ``sets`` so a test can see what the PDU was told, in order. Values outside ``allowed`` get ``wrong-value``, like a
real PDU. With ``rpdu`` as the third argument the table is PowerNet-MIB's rPDU outlet
group under 1.3.6.1.4.1.318.1.1.12.3: a SET of rPDUOutletControlOutletCommand (``3.1.1.4.N``)
also updates the read-only rPDUOutletStatusOutletState (``5.1.1.4.N``: 1 on, 2 off), as an
AP89xx does. Protocol: snmpd(8) / snmpd.conf(5), "pass_persist".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    state_path = Path(sys.argv[1])
    allowed = {int(v) for v in sys.argv[2].split(",")} if len(sys.argv) > 2 else {1, 2, 3}
    rpdu = len(sys.argv) > 3 and sys.argv[3] == "rpdu"
    lines = iter(sys.stdin.readline, "")

    def load() -> tuple[str, dict[str, int]]:
        data = json.loads(state_path.read_text())
        return data["base"], {k: int(v) for k, v in data["values"].items()}

    def save(base: str, values: dict[str, int], suffix: str, value: int) -> None:
        data = json.loads(state_path.read_text())
        data["values"] = values
        data.setdefault("sets", []).append([suffix, value])
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(state_path)

    def key(suffix: str) -> tuple[int, ...]:
        return tuple(int(p) for p in suffix.split("."))

    def reply(*out: str) -> None:
        sys.stdout.write("".join(f"{line}\n" for line in out))
        sys.stdout.flush()

    for command in lines:
        command = command.strip()
        if not command:
            continue  # snmpd ends a "set" with an empty line
        if command == "PING":
            reply("PONG")
            continue
        oid = next(lines).strip().lstrip(".")
        base, values = load()
        suffix = oid[len(base) + 1:] if oid.startswith(base + ".") else ""
        if command == "get":
            if suffix in values:
                reply(f".{oid}", "integer", str(values[suffix]))
            else:
                reply("NONE")
        elif command == "getnext":
            after = [s for s in values if not suffix or key(s) > key(suffix)]
            if oid == base or not oid.startswith(base):
                after = list(values)
            if after:
                nxt = min(after, key=key)
                reply(f".{base}.{nxt}", "integer", str(values[nxt]))
            else:
                reply("NONE")
        elif command == "set":
            kind, _, raw = next(lines).strip().partition(" ")
            if suffix not in values or (rpdu and not suffix.startswith("3.1.1.4.")):
                reply("not-writable")
            elif kind != "integer":
                reply("wrong-type")
            elif int(raw) not in allowed:
                reply("wrong-value")
            else:
                values[suffix] = int(raw)
                if rpdu:  # immediateOn(1)/immediateReboot(3) end on, immediateOff(2) off
                    values["5.1.1.4." + suffix.rsplit(".", 1)[1]] = 2 if int(raw) == 2 else 1
                save(base, values, suffix, int(raw))
                reply("DONE")
        else:
            reply("NONE")


if __name__ == "__main__":
    main()
