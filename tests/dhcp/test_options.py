"""Option codecs: byte-exact round trips, RFC 3396 splitting/joining, overload, option 43 TLVs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.dhcp.options import (
    FILE_FIELD,
    SNAME_FIELD,
    OptionCodecError,
    decode_client_id,
    decode_message_options,
    decode_options,
    decode_parameter_list,
    decode_text,
    decode_user_class,
    decode_vendor_suboptions,
    describe_options,
    encode_options,
    encode_vendor_suboptions,
    encoded_length,
    option_instances,
    pack_options,
)

codes = st.integers(min_value=1, max_value=254)
values = st.binary(max_size=1200)
option_sets = st.dictionaries(codes, values, max_size=12)


@given(option_sets)
def test_encode_then_decode_gives_back_every_option_exactly(options: dict[int, bytes]) -> None:
    assert decode_options(encode_options(options)) == options


@given(option_sets)
def test_long_values_are_split_into_instances_of_at_most_255_bytes(options: dict[int, bytes]) -> None:
    instances = option_instances(options)
    assert all(len(v) <= 255 for _, v in instances)
    for code, value in options.items():
        assert b"".join(v for c, v in instances if c == code) == value
    assert encoded_length(options) == len(encode_options(options))


def test_rfc3396_example_a_300_byte_option_160_is_two_instances() -> None:
    url = b"http://192.0.2.1/" + b"a" * 283
    wire = encode_options({160: url})
    assert wire[:2] == bytes((160, 255)) and wire[257:259] == bytes((160, 45)) and wire[-1] == 255
    assert decode_options(wire) == {160: url}


def test_present_but_empty_absent_and_nul_padded_stay_distinct() -> None:
    wire = encode_options({67: b"", 66: b"192.0.2.1\x00\x00"})
    assert wire == b"\x43\x00\x42\x0b192.0.2.1\x00\x00\xff"
    decoded = decode_options(wire)
    assert decoded == {67: b"", 66: b"192.0.2.1\x00\x00"}
    assert 160 not in decoded


def test_split_instances_need_not_be_adjacent_and_pads_are_skipped() -> None:
    wire = b"\x00\xa0\x03abc\x35\x01\x01\x00\xa0\x02de\xff\xa0\x01z"
    assert decode_options(wire) == {160: b"abcde", 53: b"\x01"}  # stops at END


@pytest.mark.parametrize(("wire", "message"), [
    (b"\x35", r"option 53 at offset 0 is truncated \(no length byte\)"),
    (b"\x35\x01\x01\xa0\x05abc", r"option 160 at offset 3 says length 5 but only 3 bytes remain"),
])
def test_truncated_options_are_an_error_naming_option_and_offset(wire: bytes, message: str) -> None:
    with pytest.raises(OptionCodecError, match=message):
        decode_options(wire)


@pytest.mark.parametrize(("options", "message"), [
    ({0: b"x"}, r"option code 0 is not 1..254"),
    ({255: b"x"}, r"option code 255"),
    ({160: "text"}, r"option 160 value must be bytes, got str"),
])
def test_bad_option_sets_are_refused(options: dict[int, object], message: str) -> None:
    with pytest.raises(OptionCodecError, match=message):
        encode_options(options)  # type: ignore[arg-type]


@given(st.dictionaries(codes.filter(lambda c: c != 52), values, max_size=12),
       st.integers(min_value=60, max_value=400))
def test_packing_into_a_small_options_field_round_trips_through_file_and_sname(
        options: dict[int, bytes], space: int) -> None:
    try:
        packed = pack_options(options, space=space)
    except OptionCodecError:
        assert encoded_length(options) > space - 4 + FILE_FIELD - 1 + SNAME_FIELD - 1
        return
    main = b"".join(bytes((c, len(v))) + v for c, v in packed.main) + b"\xff"
    assert len(main) <= space
    decoded = decode_message_options(main, file=packed.file, sname=packed.sname)
    assert {c: v for c, v in decoded.items() if c != 52} == options
    if packed.overloaded:
        assert packed.main[0] == (52, b"\x03" if packed.sname else b"\x01")
        assert len(packed.file) == FILE_FIELD and len(packed.sname) in (0, SNAME_FIELD)


def test_small_options_are_not_overloaded_nor_split() -> None:
    packed = pack_options({1: b"\xff\xff\xff\x00", 66: b"192.0.2.1"}, space=308)
    assert not packed.overloaded and packed.main == [(1, b"\xff\xff\xff\x00"), (66, b"192.0.2.1")]


def test_overload_reads_options_then_file_then_sname() -> None:
    options = b"\x34\x01\x03\xa0\x02ab\xff"
    file = b"\xa0\x02cd\xff" + bytes(123)
    sname = b"\xa0\x02ef\x42\x01x\xff" + bytes(56)
    assert decode_message_options(options, file=file, sname=sname) == {52: b"\x03", 160: b"abcdef", 66: b"x"}
    with pytest.raises(OptionCodecError, match=r"option 52 \(overload\) value 07 is not 1, 2 or 3"):
        decode_message_options(b"\x34\x01\x07\xff")
    with pytest.raises(OptionCodecError, match=r"file: option 66 at offset 0 says length 127"):
        decode_message_options(b"\x34\x01\x01\xff", file=b"\x42\x7f" + bytes(126))


# --- option 43 ----------------------------------------------------------------------------

@given(st.lists(st.tuples(codes, st.binary(max_size=255)), max_size=10))
def test_vendor_suboptions_round_trip_in_order_with_duplicates(subs: list[tuple[int, bytes]]) -> None:
    assert decode_vendor_suboptions(encode_vendor_suboptions(subs)) == subs


def test_vendor_suboptions_from_a_mapping_and_their_errors() -> None:
    assert encode_vendor_suboptions({1: b"http://192.0.2.1/", 2: b""}) == b"\x01\x11http://192.0.2.1/\x02\x00"
    with pytest.raises(OptionCodecError, match=r"option 43 sub-option 1: value is 256 bytes, at most 255 fit"):
        encode_vendor_suboptions({1: b"x" * 256})
    with pytest.raises(OptionCodecError, match=r"option 43 sub-options: option 1 at offset 0 says length 20"):
        decode_vendor_suboptions(b"\x01\x14http://")
    # A plain URL in option 43 (Admin Manual 10.2.2) is not TLV-encoded: it fails as such.
    with pytest.raises(OptionCodecError):
        decode_vendor_suboptions(b"http://192.0.2.1/cfg")
    assert decode_vendor_suboptions(b"\x00\x01\x01a\xff\x02\x01b") == [(1, b"a")]


# --- readable decoders ---------------------------------------------------------------------

def test_readable_decoders_for_what_a_phone_sends() -> None:
    assert decode_parameter_list(bytes((1, 3, 66, 67, 160))) == (1, 3, 66, 67, 160)
    assert decode_text(b"440HD") == "440HD"
    assert decode_text(b"440HD\x00") == "440HD\\x00"
    assert decode_text(b"a\\b\xff") == "a\\x5cb\\xff"
    cid = decode_client_id(b"\x01\x00\x90\x8f\x00\x00\x01")
    assert cid.mac == "00:90:8f:00:00:01" and str(cid) == "01:00:90:8f:00:00:01"
    assert decode_client_id(b"\xffabc").mac is None
    with pytest.raises(OptionCodecError, match=r"option 61 \(client id\): empty"):
        decode_client_id(b"")


@pytest.mark.parametrize(("value", "classes", "prefixed"), [
    (b"\x05440HD", ("440HD",), True),                         # RFC 3004
    (b"\x05440HD\x03abc", ("440HD", "abc"), True),
    (b"440HD", ("440HD",), False),                            # bare text, as many phones send
    (b"\x05440H", ("\\x05440H",), False),                     # a length that overruns: text
    (b"\x00abc", ("\\x00abc",), False),                       # zero length is not RFC 3004
])
def test_user_class_accepts_rfc3004_and_raw_text(value: bytes, classes: tuple[str, ...], prefixed: bool) -> None:
    decoded = decode_user_class(value)
    assert decoded.classes == classes and decoded.length_prefixed is prefixed


def test_describe_options_is_json_ready_evidence() -> None:
    described = describe_options({160: b"http://x/\x00", 55: bytes((66, 67)), 77: b"440HD", 61: b"\x01ab", 1: b"\xff\xff\xff\x00"})
    assert described["160"] == {"name": "provisioning-url (v4-captive-portal)", "length": 10,
                                "hex": "687474703a2f2f782f00", "text": "http://x/\\x00"}
    assert described["55"]["codes"] == [66, 67]
    assert described["77"]["text"] == "440HD"
    assert described["61"]["text"] == "01:61:62"
    assert described["1"] == {"name": "subnet-mask", "length": 4, "hex": "ffffff00"}
