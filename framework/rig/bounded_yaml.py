"""YAML for rig files with a bound on size, nesting and alias expansion.

A YAML alias shares a node, so 14 levels of 9 aliases (under 1 kB of text) describe a
document of 9**14 nodes: anything that walks the loaded data (validation, key positions)
expands it, and PyYAML's pure-Python reader needs seconds for a 1 MB flow list. Here the
node graph is composed from libyaml's events (C speed, no recursion) by an iterative
composer that counts, per event, the *expanded* size of the document (an alias adds the
expanded size of the node it names, known because that node is complete), refuses nesting
deeper than ``MAX_DEPTH`` and an alias to one of its own ancestors. A document is refused
as soon as the count passes ``MAX_NODES``, before anything is constructed, so any text of
at most ``MAX_BYTES`` is composed or refused in linear time.

The composed graph is what PyYAML's composer would build (same tags, marks, anchors
shared), so ``SafeConstructor`` constructs it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader, ReaderError

from framework.errors import InputError, first_line

MAX_BYTES = 1_000_000
"""A rig file larger than this (UTF-8 bytes) is refused before parsing."""
MAX_NODES = 20_000
"""The most nodes a document may have with every alias expanded: a rig has about 40 per phone
(rigs/sim.yaml: 218), so this is a bench of some 500 phones; validating that many nodes
stays well under a second."""
MAX_DEPTH = 64
"""The deepest nesting of sequences and mappings (a real rig: 5)."""

_EVENTS: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


class YamlBoundError(MarkedYAMLError, InputError):
    """A document refused for its size: ``problem`` says what, ``mark`` (0-based) where."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.mark = mark


class YamlRecursiveAlias(MarkedYAMLError, InputError):
    """An alias to one of its own ancestors (``a: &x [*x]``); ``loc`` is the key path."""

    def __init__(self, mark: Any, loc: tuple[str | int, ...]) -> None:
        super().__init__(problem="YAML alias refers to itself", problem_mark=mark)
        self.mark, self.loc = mark, loc


_MAX_NUMBER_CHARS = 4300  # Python's own limit for int() of a decimal string


class BoundedConstructor(SafeConstructor):
    """SafeConstructor that names a value it cannot read (an integer of 5000 digits, a
    timestamp with month 13) as a ``ConstructorError`` where it sits, never a bare
    ``ValueError``, and refuses long base-60 integers (summed digit by digit: quadratic)."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag == "tag:yaml.org,2002:int" and len(str(node.value)) > _MAX_NUMBER_CHARS:
            raise ConstructorError(None, None, f"a number of more than {_MAX_NUMBER_CHARS} "
                                   f"characters", node.start_mark)
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            first = first_line(exc)
            raise ConstructorError(None, None, f"cannot read this value ({first})",
                                   node.start_mark) from None


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with the bounds of this module (any YAML file a user hands us):
    raises ``yaml.YAMLError`` (``MarkedYAMLError`` with ``problem``/``problem_mark`` for
    the bounds) instead of expanding a bomb."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlBoundError(f"larger than {MAX_BYTES} bytes: refused")
    node = compose(text)
    return BoundedConstructor().construct_document(node) if node is not None else None


@dataclass
class _Open:
    """A sequence or mapping being composed: its node, expanded size so far, pending key."""

    node: SequenceNode | MappingNode
    size: int = 1
    key: Node | None = None
    anchored: bool = False


def check_printable(text: str) -> None:
    """PyYAML's reader check over the whole text (a ``ReaderError`` with a character index);
    libyaml reports byte offsets and cannot take surrogates at all."""
    match = Reader.NON_PRINTABLE.search(text)
    if match:
        character = match.group()
        raise ReaderError("<rig>", match.start(), ord(character), "unicode",
                          "special characters are not allowed")


def compose(text: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Node | None:
    """The node graph of the single YAML document in ``text`` (None if there is none).

    Raises ``YamlBoundError`` past ``max_nodes`` expanded nodes or ``max_depth`` levels,
    ``YamlRecursiveAlias``, or PyYAML's own errors (syntax, undefined alias, ...).
    """
    check_printable(text)
    events = _EVENTS(text)
    try:
        events.get_event()  # STREAM-START
        if events.check_event(StreamEndEvent):
            return None
        events.get_event()  # DOCUMENT-START
        root = _compose_root(events, max_nodes, max_depth)
        events.get_event()  # DOCUMENT-END
        if not events.check_event(StreamEndEvent):
            event: Any = events.get_event()
            raise ComposerError("expected a single document in the stream", root.start_mark,
                                "but found another document", event.start_mark)
        return root
    except ReaderError as exc:  # libyaml counts UTF-8 bytes; say which character
        before = text.encode("utf-8")[:exc.position].decode("utf-8", "ignore")
        raise ReaderError(exc.name, len(before), exc.character, exc.encoding,
                          exc.reason) from None
    finally:
        events.dispose()


def _compose_root(events: Any, max_nodes: int, max_depth: int) -> Node:
    anchors: dict[str, Node] = {}
    sizes: dict[int, int] = {}  # id(anchored node) -> its expanded size, once complete
    stack: list[_Open] = []
    total = 0
    aliased = False
    while True:
        event: Any = events.get_event()
        start: Any = event.start_mark  # libyaml's Mark: the stubs know only PyYAML's
        end: Any = event.end_mark
        node: Node
        if isinstance(event, CollectionEndEvent):
            frame = stack.pop()
            node, size = frame.node, frame.size
            node.end_mark = end
            if frame.anchored:
                sizes[id(node)] = size
        elif isinstance(event, AliasEvent):
            if event.anchor not in anchors:
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                    start)
            node = anchors[event.anchor]
            if id(node) not in sizes:
                raise YamlRecursiveAlias(event.start_mark, _loc(stack))
            size = sizes[id(node)]
            total += size
            aliased = True
        else:
            if event.anchor is not None and event.anchor in anchors:
                raise ComposerError(f"found duplicate anchor {event.anchor!r}; first occurrence",
                                    anchors[event.anchor].start_mark, "second occurrence",
                                    event.start_mark)
            total += 1
            size = 1
            tag = event.tag
            if isinstance(event, ScalarEvent):
                if tag is None or tag == "!":
                    tag = events.resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, start, end,
                                  style=event.style)
                if event.anchor is not None:
                    anchors[event.anchor] = node
                    sizes[id(node)] = 1
            else:
                if len(stack) >= max_depth:
                    raise YamlBoundError(f"YAML nesting deeper than {max_depth} levels: refused",
                                         event.start_mark)
                kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
                assert isinstance(event, SequenceStartEvent | MappingStartEvent)
                if tag is None or tag == "!":
                    tag = events.resolve(kind, None, event.implicit)
                collection = kind(tag, [], start, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = collection
                stack.append(_Open(collection, anchored=event.anchor is not None))
                if total > max_nodes:
                    raise _too_big(max_nodes, start, aliased)
                continue
        if total > max_nodes:
            raise _too_big(max_nodes, start, aliased)
        if not stack:
            return node
        parent = stack[-1]
        parent.size += size
        if isinstance(parent.node, SequenceNode):
            parent.node.value.append(node)
        elif parent.key is None:
            parent.key = node
        else:
            parent.node.value.append((parent.key, node))
            parent.key = None


def _too_big(max_nodes: int, mark: Any, aliased: bool) -> YamlBoundError:
    if aliased:
        return YamlBoundError(f"the document expands to more than {max_nodes} nodes (YAML "
                              f"aliases): refused", mark)
    return YamlBoundError(f"the document has more than {max_nodes} nodes: refused", mark)


def _loc(stack: list[_Open]) -> tuple[str | int, ...]:
    """The key path of the node being composed (for a located message)."""
    loc: list[str | int] = []
    for frame in stack:
        if isinstance(frame.node, SequenceNode):
            loc.append(len(frame.node.value))
        elif isinstance(frame.key, ScalarNode):
            loc.append(frame.key.value)
        else:
            loc.append("?")
    return tuple(loc)
