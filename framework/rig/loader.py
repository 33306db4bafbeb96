"""Load a rig file: YAML -> validated, cross-checked ``Rig``, or one clear ``RigError``.

Every problem is reported as ``FILE:LINE:COL: KEY.PATH: what was expected`` (e.g.
``rigs/lab.yaml:31:30: phones[2].power.outlet: outlet 9 is out of range ...``), one line
per problem, so a user can fix the file without reading a traceback. Duplicate YAML keys
are errors too (PyYAML would silently keep the last one). Hostile files are refused in one
line before anything walks them: over 1 MB, nested deeper than 64, or expanding (YAML aliases)
past 20000 nodes (framework.rig.bounded_yaml), so any file is loaded or refused in well under
a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from framework.errors import InputError, first_line
from framework.rig.bounded_yaml import (
    MAX_BYTES,
    BoundedConstructor,
    YamlBoundError,
    YamlRecursiveAlias,
    compose,
)
from framework.rig.model import PDU_DRIVERS, Rig

Loc = tuple[str | int, ...]

_SECRET_KEYS = {"password", "community", "env", "auth_key", "priv_key"}
_TOO_LARGE = f"the rig file is larger than {MAX_BYTES} bytes: refused"
_MAX_LINES = 100  # problems listed; the rest are counted


class RigError(InputError):
    """A rig file is unusable; the message names the file, the key path and what was expected."""


@dataclass(frozen=True)
class RigProblem:
    """One problem in a rig file: where (key path) and what was expected."""

    loc: Loc
    message: str


def key_path(loc: Sequence[str | int]) -> str:
    """``('phones', 2, 'power', 'outlet')`` -> ``phones[2].power.outlet``; a key that is not
    plain printable text is quoted (``console['\\x1e']``) so the message stays one line."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (not str(part).isprintable() or str(part).strip() != str(part) or not str(part)
              or any(c in str(part) for c in ".[]:'\"")):
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# --- YAML: bounded, with duplicate-key detection and key positions --------------------------

class _RigConstructor(BoundedConstructor):
    """BoundedConstructor that rejects duplicate mapping keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *defaults': own keys win
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                first = seen[key].start_mark
                raise ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first defined at line {first.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _position(root: Node | None, loc: Loc) -> tuple[int, int] | None:
    """The 1-based (line, column) of the value at ``loc`` in the YAML text, or of its deepest
    ancestor found there (a missing key points at the mapping that lacks it)."""
    node = root
    for part in loc:
        child = None
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:  # the last of equal keys wins, as in a dict
                if isinstance(key_node, ScalarNode) and key_node.value == part:
                    child = value_node
        elif isinstance(node, SequenceNode) and isinstance(part, int) and \
                0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    if node is None:
        return None
    return node.start_mark.line + 1, node.start_mark.column + 1


def _at(source: str, mark: Any) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


def _parse_yaml(text: str, source: str) -> tuple[Any, Node | None]:
    """(data, root node) of rig YAML text, or one located ``RigError`` line."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise RigError(f"{source}: {_TOO_LARGE}")
    try:
        node = compose(text)
        data = _RigConstructor().construct_document(node) if node is not None else None
    except YamlBoundError as exc:
        raise RigError(f"{_at(source, exc.mark)}: {exc.problem}") from None
    except YamlRecursiveAlias as exc:
        raise RigError(f"{_at(source, exc.mark)}: {key_path(exc.loc)}: YAML alias refers to "
                       f"itself (a rig file cannot be recursive)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise RigError(f"{_at(source, mark)}: YAML syntax error: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise RigError(f"{source}:{line}:{column}: YAML syntax error: character "
                       f"{character!r} is not allowed in YAML") from None
    except yaml.YAMLError as exc:
        first = first_line(exc)
        raise RigError(f"{source}: YAML syntax error: {first}") from None
    return data, node


# --- pydantic errors -> one line each -------------------------------------------------------

def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number",
            float: "a number", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _allowed_keys(loc: Loc, data: Any) -> list[str]:
    """The keys the schema allows at ``loc`` (for 'unknown key' messages)."""
    model: Any = Rig
    node = data
    for part in loc:
        if isinstance(node, dict | list):
            try:
                node = node[part]  # type: ignore[index]
            except (KeyError, IndexError, TypeError):
                node = None
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_in(field.annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any, node: Any) -> Any:
    """The BaseModel inside an annotation like ``list[X]``, ``X | None`` or the PDU union."""
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(node, dict) and node.get("driver") in PDU_DRIVERS and any(
            a in PDU_DRIVERS.values() for a in _flatten(args)):
        return PDU_DRIVERS[node["driver"]]
    for arg in _flatten(args):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _flatten(args: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for arg in args:
        out.append(arg)
        out.extend(_flatten(getattr(arg, "__args__", ())))
        out.extend(_flatten(getattr(arg, "__metadata__", ())))
        origin = getattr(arg, "__origin__", None)
        if origin is not None:
            out.append(origin)
    return out


def _shown(loc: Loc, value: Any) -> str:
    """`` (got X)`` for a scalar input, never for a secret."""
    if any(part in _SECRET_KEYS for part in loc if isinstance(part, str)):
        return ""
    if isinstance(value, dict | list):
        return f" (got {_type_name(value)})"
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:57] + '...'})"


def _problem(error: Any, data: Any) -> RigProblem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    # a tagged union puts the tag into the path: pdus[0].apc-snmp.port -> pdus[0].port
    if len(loc) >= 3 and loc[0] == "pdus" and loc[2] in PDU_DRIVERS:
        loc = (*loc[:2], *loc[3:])
    if kind == "missing":
        return RigProblem(loc, "required key is missing")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return RigProblem(loc, f"unknown key{hint}")
    if kind == "union_tag_invalid":
        return RigProblem((*loc, "driver"), f"unknown PDU driver {ctx.get('tag')!r} (expected one "
                          f"of: {', '.join(PDU_DRIVERS)})")
    if kind == "union_tag_not_found":
        return RigProblem((*loc, "driver"), f"required key is missing (one of: "
                          f"{', '.join(PDU_DRIVERS)})")
    if kind in ("rig", "inline_secret"):
        return RigProblem(loc, error["msg"])
    if kind == "literal_error":
        return RigProblem(loc, f"expected one of {ctx.get('expected')}{_shown(loc, value)}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return RigProblem(loc, f"expected a mapping{_shown(loc, value)}")
    if kind == "list_type":
        return RigProblem(loc, f"expected a list{_shown(loc, value)}")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return RigProblem(loc, f"expected a whole number{_shown(loc, value)}")
    if kind in ("float_parsing", "float_type"):
        return RigProblem(loc, f"expected a number{_shown(loc, value)}")
    if kind in ("string_type",):
        return RigProblem(loc, f"expected a string{_shown(loc, value)}")
    if kind in ("ip_v4_address", "ip_any_address"):
        return RigProblem(loc, f"expected an IPv4 address like 192.0.2.11{_shown(loc, value)}")
    bounds = {"greater_than_equal": ">= {ge}", "greater_than": "> {gt}",
              "less_than_equal": "<= {le}", "less_than": "< {lt}"}
    if kind in bounds:
        return RigProblem(loc, f"expected a number {bounds[kind].format(**ctx)}"
                               f"{_shown(loc, value)}")
    if kind == "too_short":
        return RigProblem(loc, f"expected at least {ctx.get('min_length')} item(s)")
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "env":
        return RigProblem(loc, "expected an environment variable name (letters, digits, '_', "
                               "not starting with a digit)")
    if kind == "string_pattern_mismatch":
        return RigProblem(loc, f"expected text matching {ctx.get('pattern')}{_shown(loc, value)}")
    if kind == "string_too_short":
        return RigProblem(loc, "expected a non-empty string")
    return RigProblem(loc, f"{error['msg']}{_shown(loc, value)}")


# --- cross-checks ---------------------------------------------------------------------------

def cross_check(rig: Rig) -> list[RigProblem]:
    """Consistency between sections: unique names/MACs/addresses/outlets, PDUs exist,
    outlets in range, fixed addresses inside the lab subnet and outside the DHCP pool."""
    problems: list[RigProblem] = []
    lab = rig.lab
    net = lab.network
    where_lab = f"the lab subnet {net}"
    pool = f"{lab.pool.start}-{lab.pool.end}"
    if lab.pool.start not in net or lab.pool.end not in net:
        problems.append(RigProblem(("lab", "pool"), f"pool {pool} is not inside {where_lab}"))
    if lab.address.ip in lab.pool:
        problems.append(RigProblem(("lab", "address"),
                                   f"{lab.address.ip} is inside the DHCP pool {pool}"))

    pdus: dict[str, int] = {}
    for i, pdu in enumerate(rig.pdus):
        if pdu.name in pdus:
            problems.append(RigProblem(("pdus", i, "name"), f"duplicate PDU name {pdu.name!r} "
                                       f"(also pdus[{pdus[pdu.name]}])"))
        else:
            pdus[pdu.name] = i

    used: dict[str, tuple[int, str]] = {}  # address -> (phone index or -1 for infra, what)
    used[str(lab.address.ip)] = (-1, "the lab address")
    for pdu in rig.pdus:
        host = getattr(pdu, "host", None)
        if isinstance(host, str) and _is_ipv4(host):
            used.setdefault(host, (-1, f"PDU {pdu.name!r}"))

    names: dict[str, int] = {}
    macs: dict[str, int] = {}
    outlets: dict[tuple[str, int], int] = {}
    for i, phone in enumerate(rig.phones):
        at = ("phones", i)
        if phone.name in names:
            problems.append(RigProblem((*at, "name"), f"duplicate phone name {phone.name!r} "
                                       f"(also phones[{names[phone.name]}])"))
        names.setdefault(phone.name, i)
        if phone.mac in macs:
            j = macs[phone.mac]
            problems.append(RigProblem((*at, "mac"), f"duplicate MAC {phone.mac} (also "
                                       f"phones[{j}], {rig.phones[j].name})"))
        macs.setdefault(phone.mac, i)

        address = phone.address
        if address not in net:
            problems.append(RigProblem((*at, "address"), f"{address} is outside {where_lab}"))
        elif address in (net.network_address, net.broadcast_address):
            problems.append(RigProblem((*at, "address"), f"{address} is the network or "
                                       f"broadcast address of {where_lab}"))
        elif address in lab.pool:
            problems.append(RigProblem((*at, "address"), f"{address} is inside the DHCP pool "
                                       f"{pool}; fixed addresses must be outside it"))
        elif str(address) in used:
            j, what = used[str(address)]
            owner = f"phones[{j}] ({rig.phones[j].name})" if j >= 0 else what
            problems.append(RigProblem((*at, "address"), f"{address} is already used by {owner}"))
        else:
            used[str(address)] = (i, phone.name)

        ref = phone.power
        if ref.pdu not in pdus:
            known = ", ".join(pdus) or "none"
            problems.append(RigProblem((*at, "power", "pdu"), f"unknown PDU {ref.pdu!r} "
                                       f"(PDUs in this rig: {known})"))
            continue
        pdu = rig.pdus[pdus[ref.pdu]]
        if ref.outlet > pdu.outlets:
            problems.append(RigProblem((*at, "power", "outlet"), f"outlet {ref.outlet} is out of "
                                       f"range for PDU {pdu.name!r} (outlets 1..{pdu.outlets})"))
        elif (pdu.name, ref.outlet) in outlets:
            j = outlets[(pdu.name, ref.outlet)]
            problems.append(RigProblem((*at, "power", "outlet"), f"outlet {ref.outlet} of PDU "
                                       f"{pdu.name!r} is already used by phones[{j}] "
                                       f"({rig.phones[j].name})"))
        else:
            outlets[(pdu.name, ref.outlet)] = i
    return problems


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ip_address(text), IPv4Address)
    except ValueError:
        return False


# --- entry points ---------------------------------------------------------------------------

def _render(source: str, problems: list[RigProblem], root: Node | None,
            count: int | None = None) -> str:
    """One line per problem (at most ``_MAX_LINES``, then how many more of ``count``)."""
    lines = []
    for problem in problems[:_MAX_LINES]:
        found = _position(root, problem.loc)
        where = f"{source}:{found[0]}:{found[1]}" if found else source
        lines.append(f"{where}: {key_path(problem.loc)}: {problem.message}")
    more = (len(problems) if count is None else count) - len(lines)
    if more > 0:
        lines.append(f"{source}: ... and {more} more problem(s)")
    return "\n".join(lines)


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        names.add(name)
        for arg in _flatten([field.annotation]):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg, seen)
    return names


_FIELDS = _field_names(Rig, set())
_SAMPLE = 8  # list items and unknown keys kept per collection in a sample


def _sample(value: Any) -> Any:
    """``value`` with each list cut to its first items and each mapping to its known keys
    and first unknown ones: the same kinds of problems at the same key paths, but few."""
    if isinstance(value, list):
        return [_sample(item) for item in value[:_SAMPLE]]
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        unknown = 0
        for key, item in value.items():
            known = isinstance(key, str) and key in _FIELDS
            if known or unknown < _SAMPLE:
                out[key] = _sample(item)
                unknown += not known
        return out
    return value


def parse_rig(text: str, source: str = "<rig>") -> Rig:
    """Validate rig YAML text; ``source`` names it in errors (``RigError``). Text over
    ``MAX_BYTES``, nesting past ``MAX_DEPTH`` or aliases expanding past ``MAX_NODES``
    (framework.rig.bounded_yaml) are refused with one line."""
    data, root = _parse_yaml(text, source)
    if not isinstance(data, dict):
        raise RigError(f"{source}: expected a mapping with keys name, lab, pdus, phones "
                       f"(got {_type_name(data)})")
    try:
        rig = Rig.model_validate(data)
    except ValidationError as exc:
        count = exc.error_count()
        if count > _MAX_LINES:  # listing 100k errors takes seconds: list those of a sample
            try:
                Rig.model_validate(_sample(data))
            except ValidationError as sample_exc:
                exc = sample_exc
        problems = [_problem(e, data) for e in exc.errors()[:_MAX_LINES]]
        raise RigError(_render(source, problems, root, count)) from None
    problems = cross_check(rig)
    if problems:
        raise RigError(_render(source, problems, root))
    return rig


def load_rig(path: str | Path) -> Rig:
    """Load and validate a rig file; any problem is one ``RigError`` naming file, key, expectation.
    A file over ``MAX_BYTES`` is refused before it is parsed (and never read past the limit)."""
    source = str(path)
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise RigError(f"{source}: rig file not found") from None
    except IsADirectoryError:
        raise RigError(f"{source}: is a directory, expected a rig file (YAML)") from None
    except OSError as exc:
        raise RigError(f"{source}: cannot read rig file: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise RigError(f"{source}: {_TOO_LARGE}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    # as text mode would read it: universal newlines
    return parse_rig(text.replace("\r\n", "\n").replace("\r", "\n"), source)
