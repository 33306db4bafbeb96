"""Hypothesis over the rig loader: whatever a rig file holds, loading it either gives a rig
or one ``RigError`` whose every line names the file and a key path; nothing else escapes
(no traceback, no pydantic or YAML exception), and a value that breaks the file is named
where it sits."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from framework.rig import RigError, parse_rig
from framework.rig.loader import key_path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {name: yaml.safe_load((ROOT / "rigs" / name).read_text())
           for name in ("sim.yaml", "example-bench.yaml")}
SOURCE = "mutant.yaml"
# file[:line:col]: key.path[0]['odd key']: what was expected
LOCATED = re.compile(r"^mutant\.yaml(:\d+:\d+)?: "
                     r"(?:[^:\[]|\[(?:\d+|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\])+: \S")
REQUIRED = {"name", "lab", "phones", "mac", "model", "address", "interface"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.floats(allow_nan=False), st.text(max_size=24),
                    st.sampled_from(["", "00:90:8f:00:00:01", "192.0.2.300", "440HD", "eth0",
                                     "../../etc/passwd", "env:NOPE", "file:nope#k", "-1",
                                     "apc-snmp", "0x10", "1e9", "ssh", "rfc2217"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)


def _paths(node: Any, loc: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [loc] if loc else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*loc, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*loc, index))
    return out


def _parent(data: Any, loc: tuple[str | int, ...]) -> Any:
    for part in loc[:-1]:
        data = data[part]
    return data


def _load(text: str) -> tuple[bool, str]:
    """(loaded, message): only a rig or a RigError may come out."""
    try:
        parse_rig(text, SOURCE)
    except RigError as exc:
        message = str(exc)
        assert message, "an empty RigError"
        for line in message.splitlines():
            assert line.startswith(SOURCE), f"a line that does not name the file: {line!r}"
        assert "Traceback" not in message and "pydantic" not in message.lower()
        return False, message
    return True, ""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SOURCES)), st.data())
def test_any_value_anywhere_loads_or_is_named(source: str, data: st.DataObject) -> None:
    rig = copy.deepcopy(SOURCES[source])
    loc = data.draw(st.sampled_from(_paths(rig)), label="where")
    action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
    parent = _parent(rig, loc)
    if action == "replace":
        parent[loc[-1]] = data.draw(values, label="value")
    elif action == "delete":
        del parent[loc[-1]]
    else:
        target = parent[loc[-1]]
        if not isinstance(target, dict):
            return
        target[data.draw(st.text(min_size=1, max_size=8), label="key")] = data.draw(values)
    loaded, message = _load(yaml.safe_dump(rig, sort_keys=False))
    if not loaded and action == "add":
        assert key_path(loc) in message or "duplicate" in message, message
    if not loaded and action in ("replace", "delete"):
        # Each line is located: file, key path, what was expected. The offending value is
        # named at its own key path, or (a value fine on its own, like an empty PDU list,
        # that leaves another key dangling) at the key the cross-checks point to.
        for line in message.splitlines():
            assert LOCATED.match(line), line
        if action == "delete" and loc[-1] in REQUIRED:
            assert key_path(loc) in message or "missing" in message, message


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
@example("name: x\nname: y\n")
@example("phones: [\n")
@example("- a\n- b\n")
@example("\ufeffname: x\n")
@example("!!python/object/apply:os.system ['true']\n")
@example("a: &x [*x]\n")
def test_any_text_loads_or_is_one_rig_error(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_through_load_rig(tmp_path_factory: Any, blob: bytes) -> None:
    from framework.rig import load_rig

    path = tmp_path_factory.mktemp("rig") / "blob.yaml"
    path.write_bytes(blob)
    try:
        load_rig(path)
    except RigError as exc:
        assert all(line.startswith(str(path)) for line in str(exc).splitlines()), str(exc)
