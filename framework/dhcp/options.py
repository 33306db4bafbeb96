"""DHCPv4 option codecs: the options area, RFC 3396 long options, option 43 TLVs (no I/O).

The lab hands phones option values byte for byte and records byte for byte what the
phones sent, so these codecs never normalise: a NUL-padded value stays NUL-padded (the
resolution core decides what the firmware makes of it), and an option that is present
but empty (``b""``) is kept apart from an absent one.

Why not scapy's option dissector: ``DHCPOptionsField`` turns known codes into named,
typed values (lossy for the raw bytes we must compare), does not join RFC 3396 split
instances, and raises ``struct.error`` for values over 255 bytes. scapy still builds and
parses the packets (framework/dhcp/packet.py); these functions own the options area.

References: RFC 2131 section 4.1 (options area, overload), RFC 2132 (option formats;
section 8.4 vendor-specific information), RFC 3396 (encoding long options),
RFC 3004 (user class), Admin Manual 2.2.8 section 10.2.2 (options 160, 66/67, 43).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from framework.errors import HilError

#: The options a message carries: DHCP option code -> raw value. A code not in the
#: mapping is absent; ``b""`` is present but empty. Insertion order is wire order.
OptionSet = dict[int, bytes]

PAD = 0
END = 255
MAX_INSTANCE = 255  # one option instance carries at most 255 bytes (RFC 3396 section 1)

# Codes with a name in this lab; used for readable transcripts only.
OPTION_NAMES: dict[int, str] = {
    1: "subnet-mask", 3: "router", 6: "domain-name-server", 12: "host-name",
    15: "domain-name", 43: "vendor-specific", 50: "requested-address", 51: "lease-time",
    52: "option-overload", 53: "message-type", 54: "server-id", 55: "parameter-list",
    57: "max-message-size", 58: "renewal-time", 59: "rebinding-time", 60: "vendor-class",
    61: "client-id", 66: "tftp-server-name", 67: "bootfile-name", 77: "user-class",
    160: "provisioning-url (v4-captive-portal)",
}

# Values the lab displays as text in transcripts (URLs, names); others as hex only.
TEXT_OPTIONS = frozenset({12, 15, 60, 66, 67, 160})


class OptionCodecError(HilError, ValueError):
    """Bytes or values that are not a valid DHCP options encoding; says what and where."""


def _check_code(code: object, where: str) -> int:
    if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 254:
        raise OptionCodecError(
            f"{where}: option code {code!r} is not 1..254 (0 is PAD and 255 is END)"
        )
    return code


def _check_value(code: int, value: object, where: str) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise OptionCodecError(
            f"{where}: option {code} value must be bytes, got {type(value).__name__}"
        )
    return bytes(value)


def option_instances(options: Mapping[int, bytes]) -> list[tuple[int, bytes]]:
    """Split an option set into wire instances: values over 255 bytes become several.

    RFC 3396 section 6: a long value is split into consecutive instances of the same code,
    each at most 255 bytes; an empty value is one instance of length 0. The list is what
    scapy's ``DHCP(options=[...])`` accepts as ``(code, bytes)`` tuples.
    """
    instances: list[tuple[int, bytes]] = []
    for code, value in options.items():
        _check_code(code, "encode")
        raw = _check_value(code, value, "encode")
        if not raw:
            instances.append((code, b""))
            continue
        for start in range(0, len(raw), MAX_INSTANCE):
            instances.append((code, raw[start:start + MAX_INSTANCE]))
    return instances


def encoded_length(options: Mapping[int, bytes]) -> int:
    """Bytes the option set takes in an options area, END included."""
    return sum(2 + len(v) for _, v in option_instances(options)) + 1


def encode_options(options: Mapping[int, bytes], *, end: bool = True) -> bytes:
    """Encode an option set as an options area (code, length, value ...), END-terminated.

    Long values are split as RFC 3396 requires; the order of ``options`` is kept.
    """
    out = bytearray()
    for code, chunk in option_instances(options):
        out += bytes((code, len(chunk))) + chunk
    if end:
        out.append(END)
    return bytes(out)


def _walk(area: bytes, where: str) -> Iterable[tuple[int, bytes]]:
    """Yield (code, value) instances of an options area; stop at END; error on truncation."""
    i = 0
    n = len(area)
    while i < n:
        code = area[i]
        if code == PAD:
            i += 1
            continue
        if code == END:
            return
        if i + 1 >= n:
            raise OptionCodecError(
                f"{where}: option {code} at offset {i} is truncated (no length byte)"
            )
        length = area[i + 1]
        if i + 2 + length > n:
            raise OptionCodecError(
                f"{where}: option {code} at offset {i} says length {length} but only "
                f"{n - i - 2} bytes remain"
            )
        yield code, area[i + 2:i + 2 + length]
        i += 2 + length


def decode_options(area: bytes, *, where: str = "options") -> OptionSet:
    """Decode an options area; instances of one code are concatenated (RFC 3396 section 7).

    A missing END is tolerated (many stacks omit it); a length that runs past the end of
    the area is an error naming the option and offset. Values are returned as received.
    """
    found: OptionSet = {}
    for code, value in _walk(area, where):
        found[code] = found.get(code, b"") + value
    return found


def decode_message_options(area: bytes, file: bytes = b"", sname: bytes = b"") -> OptionSet:
    """Decode all options of a message, following option 52 into ``file`` and ``sname``.

    RFC 2131 section 4.1 (overload) and RFC 3396 section 5: the options field is read
    first, then ``file`` (overload 1 or 3), then ``sname`` (overload 2 or 3), and split
    instances across them are joined in that order.
    """
    parts = [("options", area)]
    first = decode_options(area)
    overload = first.get(52)
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise OptionCodecError(f"options: option 52 (overload) value {overload.hex()} is not 1, 2 or 3")
        if overload[0] in (1, 3):
            parts.append(("file", file))
        if overload[0] in (2, 3):
            parts.append(("sname", sname))
    found: OptionSet = {}
    for where, region in parts:
        for code, value in _walk(region, where):
            found[code] = found.get(code, b"") + value
    return found


FILE_FIELD = 128
SNAME_FIELD = 64


@dataclass(frozen=True)
class PackedOptions:
    """An option set laid out for one message: the options field instances and, when it
    did not fit, the ``file`` and ``sname`` fields it overflowed into (option 52 set)."""

    main: list[tuple[int, bytes]]
    file: bytes = b""
    sname: bytes = b""

    @property
    def overloaded(self) -> bool:
        return bool(self.file or self.sname)


def pack_options(options: Mapping[int, bytes], *, space: int) -> PackedOptions:
    """Fit an option set into ``space`` bytes of options field, overflowing into file/sname.

    Why: BusyBox udhcpc (the 3.x phones) drops replies over 576 + 80 bytes, and RFC 2131
    section 2 only promises 576; a 300-byte Option 160 needs the room. RFC 2131 4.1 and
    RFC 3396 section 5: option 52 says ``file`` (1) or both (3) carry options, read in the
    order options, file, sname. Whole instances move to the next field; one is split only
    when it cannot fit in any later field whole. Raises :class:`OptionCodecError` when
    even the three fields together are too small.
    """
    instances = option_instances(options)
    if encoded_length(options) <= space:
        return PackedOptions(main=instances)
    regions = [space - 3 - 1, FILE_FIELD - 1, SNAME_FIELD - 1]  # room for 52 and END bytes
    filled: list[list[tuple[int, bytes]]] = [[], [], []]
    pending = list(instances)
    region = 0
    room = regions[0]
    while pending:
        code, value = pending[0]
        need = 2 + len(value)
        if need <= room:
            filled[region].append(pending.pop(0))
            room -= need
            continue
        later = max(regions[region + 1:], default=0)
        if value and need > later and room >= 3:  # will not fit whole anywhere later: split here
            take = room - 2
            filled[region].append((code, value[:take]))
            pending[0] = (code, value[take:])
            room = 0
            continue
        region += 1
        if region >= len(regions):
            total = sum(2 + len(v) for _, v in instances)
            raise OptionCodecError(
                f"options need {total} bytes; the options field ({space}), file (128) and sname "
                "(64) fields cannot hold them"
            )
        room = regions[region]
    overload = 3 if filled[2] else 1

    def field(items: list[tuple[int, bytes]], size: int) -> bytes:
        raw = b"".join(bytes((c, len(v))) + v for c, v in items) + bytes((END,))
        return raw + b"\x00" * (size - len(raw))

    return PackedOptions(
        main=[(52, bytes((overload,))), *filled[0]],
        file=field(filled[1], FILE_FIELD),
        sname=field(filled[2], SNAME_FIELD) if filled[2] else b"",
    )


# --- option 43: vendor-specific sub-options (RFC 2132 section 8.4) -------------------

def encode_vendor_suboptions(suboptions: Mapping[int, bytes] | Iterable[tuple[int, bytes]]) -> bytes:
    """Encode option 43 sub-options as code/length/value TLVs (no END byte).

    RFC 2132 section 8.4: the encapsulated options use the DHCP option syntax; a sub-value
    longer than 255 bytes cannot be expressed and is refused with its code named.
    """
    items = suboptions.items() if isinstance(suboptions, Mapping) else suboptions
    out = bytearray()
    for code, value in items:
        _check_code(code, "option 43 sub-option")
        raw = _check_value(code, value, "option 43 sub-option")
        if len(raw) > MAX_INSTANCE:
            raise OptionCodecError(
                f"option 43 sub-option {code}: value is {len(raw)} bytes, at most 255 fit"
            )
        out += bytes((code, len(raw))) + raw
    return bytes(out)


def decode_vendor_suboptions(value: bytes) -> list[tuple[int, bytes]]:
    """Decode an option 43 value as sub-option TLVs, in wire order, duplicates kept.

    PAD (0) is skipped and END (255) ends the list (RFC 2132 section 8.4). A truncated
    sub-option raises :class:`OptionCodecError` naming the sub-option and offset: option
    43 that is not TLV-encoded (a plain URL string, Admin Manual 10.2.2) fails here, and
    the caller decides whether that is an error.
    """
    return list(_walk(value, "option 43 sub-options"))


# --- readable decoders for what the phone sends ---------------------------------------

def decode_text(value: bytes) -> str:
    """A text option (12 host name, 60 vendor class, 66, 67, 160) for display.

    Non-ASCII and control bytes (a trailing NUL, say) are shown escaped (``\\x00``), so
    the text is readable and still says exactly which bytes came.
    """
    return _escape(value)


def _escape(value: bytes) -> str:
    """Printable ASCII kept; every other byte, and the backslash itself, as ``\\xNN``."""
    out = []
    for b in value:
        ch = chr(b)
        out.append(ch if 0x20 <= b < 0x7F and ch != "\\" else f"\\x{b:02x}")
    return "".join(out)


def decode_parameter_list(value: bytes) -> tuple[int, ...]:
    """Option 55: the option codes the client asks for, in its order (RFC 2132 9.8)."""
    return tuple(value)


@dataclass(frozen=True)
class UserClass:
    """Option 77 as received: the class names and whether they came length-prefixed.

    RFC 3004 encodes one or more length-prefixed names; many embedded clients (BusyBox
    ``-x 77:...``, some phone firmwares) send bare text instead. Both are accepted.
    """

    classes: tuple[str, ...]
    length_prefixed: bool

    def __str__(self) -> str:
        return ",".join(self.classes)


def decode_user_class(value: bytes) -> UserClass:
    """Option 77: RFC 3004 length-prefixed names if the bytes parse exactly so, else text."""
    names: list[str] = []
    i = 0
    while i < len(value):
        length = value[i]
        if length == 0 or i + 1 + length > len(value):
            break
        names.append(_escape(value[i + 1:i + 1 + length]))
        i += 1 + length
    else:
        if names:
            return UserClass(tuple(names), True)
    return UserClass((_escape(value),), False)


@dataclass(frozen=True)
class ClientId:
    """Option 61: a type byte and an identifier (RFC 2132 9.14); type 1 means a MAC."""

    type: int
    identifier: bytes

    @property
    def mac(self) -> str | None:
        if self.type == 1 and len(self.identifier) == 6:
            return ":".join(f"{b:02x}" for b in self.identifier)
        return None

    def __str__(self) -> str:
        return ":".join(f"{b:02x}" for b in (bytes((self.type,)) + self.identifier))


def decode_client_id(value: bytes) -> ClientId:
    """Option 61: split the type byte from the identifier; refuse an empty value."""
    if not value:
        raise OptionCodecError("option 61 (client id): empty, RFC 2132 9.14 needs at least 2 bytes")
    return ClientId(value[0], bytes(value[1:]))


def describe_options(options: Mapping[int, bytes]) -> dict[str, dict[str, Any]]:
    """A JSON-ready view of an option set: per code its name, length, hex and readable text.

    Evidence for lab engineers: the hex is the exact value, the text is for reading.
    """
    out: dict[str, dict[str, Any]] = {}
    for code, value in options.items():
        entry: dict[str, Any] = {
            "name": OPTION_NAMES.get(code, f"option-{code}"),
            "length": len(value),
            "hex": value.hex(),
        }
        if code in TEXT_OPTIONS:
            entry["text"] = decode_text(value)
        elif code == 55:
            entry["codes"] = list(decode_parameter_list(value))
        elif code == 77:
            entry["text"] = str(decode_user_class(value))
        elif code == 61 and value:
            entry["text"] = str(decode_client_id(value))
        out[str(code)] = entry
    return out
