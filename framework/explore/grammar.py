"""A grammar of DHCP provisioning inputs, as hypothesis strategies.

Every generated input is a :class:`framework.runner.catalogue.Case` (group ``explore``) whose
option values name the lab server only through the ``{ip}`` / ``{name}`` placeholders or
spellings of the lab DNS name (the lab DNS answers any case), so a generated case never
points a phone outside the lab. The grammar covers what the provisioning chapter leaves
to the firmware's string parser (Admin Manual 2.2.8, 10.2.1-10.2.3, Tables 10-1/10-2):
protocols in odd case and unknown ones, hosts as IP or name (any case), explicit default
ports, directories, ``;``-separated names with blanks, ``<MODEL>``/``<MAC>`` placeholders,
surrounding white space, empty and NUL-padded values, values over 255 bytes (RFC 3396),
every combination of the URL option, 66/67 and 43 (plain string or vendor TLV), and the
``provisioning/url_option_value`` override.

Generation is reproducible: :func:`generate_cases` draws from the strategy with
hypothesis seeded by ``seed``, so ``(seed, count)`` always yields the same cases.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import strategies as st

from framework.runner.catalogue import LAB_DNS_NAME, Case, VendorTlv

#: The address used to measure a case's size (any lab address has the same length class).
SIZE_IP = "192.0.2.1"
#: The option read instead of 160 when a case exercises ``provisioning/url_option_value``.
OVERRIDE_OPTION = 224
FILE_PROTOCOLS = ("tftp", "http", "https", "ftp")
DEFAULT_PORTS = {"tftp": 69, "http": 80, "https": 443, "ftp": 21}
UNKNOWN_PROTOCOLS = ("sftp", "gopher", "tftps")

OptionValue = str | bytes | VendorTlv


def _case_variants(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text.lower(), text.upper()]) | st.lists(
        st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.upper() if f else c.lower() for c, f in zip(text, flips,
                                                                            strict=True)))


protocols: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(FILE_PROTOCOLS),
    st.sampled_from(FILE_PROTOCOLS).flatmap(_case_variants),
    st.sampled_from(UNKNOWN_PROTOCOLS),
)
#: The lab server: its address, the lab name as the rig writes it, or any spelling of it.
hosts: st.SearchStrategy[str] = st.one_of(
    st.just("{ip}"), st.just("{name}"), _case_variants(LAB_DNS_NAME))
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8)
directories = st.lists(segment, max_size=2).map(lambda segs: "".join(s + "/" for s in segs))
firmware_names = st.one_of(
    st.just("<MODEL>.img"), st.just("fw.img"), segment.map(lambda s: s + ".img"),
    st.sampled_from(["<MODEL>_<MAC>.img", "FW.IMG", "firmware"]))
config_names = st.one_of(
    st.just("<MAC>.cfg"), st.just("<MODEL>_<MAC>_conf.cfg"), segment.map(lambda s: s + ".cfg"),
    st.sampled_from(["/root.cfg", "sub/<MAC>.cfg", "C.CFG"]))
blanks = st.sampled_from(["", "", "", " ", "  ", "\t"])


#: Whether names lists may carry a third ``;``-separated name. Set by
#: :func:`generate_cases`; a module flag because strategies are built once.
_EXTRA_NAMES = threading.local()


#: Shapes of the names after a server; :data:`NAMED` are those that give a file name.
SHAPES = ("none", "dir-only", "firmware", "firmware-config", "config", "semicolon")
NAMED = ("firmware", "firmware-config", "config")


@st.composite
def name_lists(draw: Any, shapes: tuple[str, ...] = SHAPES) -> str:
    """What follows the server: ``[dir/][firmware][;[blank]config[;extra]]`` or ``/``."""
    shapes_ = list(shapes)
    if getattr(_EXTRA_NAMES, "on", True) and shapes == SHAPES:
        shapes_.append("extra")
    shape = draw(st.sampled_from(shapes_))
    directory = draw(directories)
    if shape == "none":
        return ""
    if shape == "dir-only":
        return "/" + (directory or "phones/")
    if shape == "semicolon":
        return "/" + directory + ";"
    firmware = draw(firmware_names) if shape in ("firmware", "firmware-config", "extra") else ""
    text = "/" + directory + firmware
    if shape in ("firmware-config", "config", "extra"):
        text += ";" + draw(blanks) + draw(config_names)
    if shape == "extra":
        text += ";" + draw(config_names)
    return text


@st.composite
def urls(draw: Any, *, protocol: str | None = "any", shapes: tuple[str, ...] = SHAPES) -> str:
    """A Table 10-1 style value: ``[protocol://]server[:port][names]``."""
    proto = draw(protocols) if protocol == "any" else protocol
    host = draw(hosts)
    port = ""
    if proto and proto.lower() in DEFAULT_PORTS and draw(st.integers(0, 5)) == 0:
        port = f":{DEFAULT_PORTS[proto.lower()]}"  # the lab listens on default ports only
    prefix = f"{proto}://" if proto else ""
    return prefix + host + port + draw(name_lists(shapes))


def _decorate(draw: Any, text: str) -> str | bytes:
    """Surrounding white space, NUL padding, over-long padding: the value quirks."""
    kind = draw(st.sampled_from(["plain"] * 6 + ["blanks", "nul", "long"]))
    if kind == "blanks":
        return draw(blanks) + text + draw(blanks)
    if kind == "nul":
        return text.encode("ascii") + b"\x00" * draw(st.integers(1, 3))
    if kind == "long" and "/" in text.split("://", 1)[-1]:
        head, _, tail = text.rpartition("/")
        return head + "/" + "d" * draw(st.integers(250, 300)) + tail
    return text


@st.composite
def url_option_values(draw: Any) -> str | bytes:
    """Option 160 (or the override option): Table 10-1 forms, bare hosts, empty."""
    kind = draw(st.sampled_from(["url"] * 8 + ["bare", "empty"]))
    if kind == "empty":
        return ""
    return _decorate(draw, draw(urls(protocol=None if kind == "bare" else "any")))


@st.composite
def option66_values(draw: Any) -> str | bytes:
    """Option 66: a server with or without protocol (Table 10-2), maybe names, or empty."""
    kind = draw(st.sampled_from(["host", "host", "protocol-host", "protocol-host",
                                 "protocol-names", "host-names", "empty"]))
    if kind == "empty":
        return ""
    if kind == "host":
        value = draw(hosts)
    elif kind == "host-names":
        value = draw(hosts) + draw(name_lists())
    elif kind == "protocol-host":
        value = draw(protocols) + "://" + draw(hosts)
    else:
        value = draw(urls())
    return _decorate(draw, value)


@st.composite
def option67_values(draw: Any) -> str | bytes:
    """Option 67: ``abc.img;efg.cfg`` (Table 10-2) and the shapes the table leaves open."""
    fw = draw(firmware_names)
    cfg = draw(config_names).lstrip("/")
    value = draw(st.sampled_from([f"{fw};{cfg}", f"{fw};{cfg}", fw, cfg, f";{cfg}", f"{fw};",
                                  ";", "", f"{fw}; {cfg}"]))
    return _decorate(draw, value) if value else value


@st.composite
def option43_values(draw: Any) -> str | bytes | VendorTlv:
    """Option 43 (10.2.3): a URL string or a vendor TLV whose sub-option carries it."""
    url = draw(urls(protocol=draw(st.sampled_from(FILE_PROTOCOLS))))
    if draw(st.booleans()):
        return VendorTlv(draw(st.sampled_from([1, 1, 1, 2])), url)
    return url


#: How inputs are steered at combinations that separate the sources (each out of
#: :data:`STEER_OF`): Option 66 *with file names* together with Option 67 names
#: (:data:`STEERED_NAMES`), and two or three URL sources at once (:data:`STEERED_ORDER`).
#: Free drawing made the first in under 2 % of inputs (66 and 67 both drawn, 66 the source
#: in effect, 66 naming a file, 67 non-empty): too rare for 100 inputs a phone to expose a
#: firmware whose 67 names replace 66's (Table 10-2 says 66's names win), and the second
#: in ~10 %, so 30 inputs often held none that tells which source a firmware reads first.
STEERED_NAMES, STEERED_ORDER, STEER_OF = 2, 2, 8


@st.composite
def separating_sets(draw: Any) -> tuple[dict[int, OptionValue], int]:
    """Option 66 naming files (with or without protocol, dir, blanks), or one time in three
    naming none, and Option 67 names (two, or a single one)."""
    shapes = NAMED if draw(st.integers(0, 2)) else ("none", "dir-only")
    if draw(st.booleans()):
        named = draw(hosts) + draw(name_lists(shapes))
    else:
        named = draw(urls(protocol=draw(st.sampled_from(FILE_PROTOCOLS)), shapes=shapes))
    options: dict[int, OptionValue] = {66: _decorate(draw, named)}
    fw = draw(firmware_names)
    cfg = draw(config_names).lstrip("/")
    options[67] = draw(st.sampled_from([f"{fw};{cfg}", fw, cfg, f";{cfg}", f"{fw}; {cfg}"]))
    if draw(st.integers(0, 3)) == 0:
        options[43] = draw(option43_values())
    return options, 160


@st.composite
def precedence_sets(draw: Any) -> tuple[dict[int, OptionValue], int]:
    """Two or three sources that each give a URL (URL option, 66, 43), maybe 67 names and
    the override with Option 160 as a decoy: which one a firmware reads first shows. Or,
    one time in three, Option 43 alone as a vendor TLV (read only when 43 is in effect).
    A URL option sometimes yields no URL (empty, or a bare host): the next source is read."""
    if draw(st.integers(0, 2)) == 0:
        url = draw(urls(protocol=draw(st.sampled_from(FILE_PROTOCOLS))))
        return {43: VendorTlv(1, url)}, 160
    url_option = draw(st.sampled_from([160, 160, OVERRIDE_OPTION]))
    others = draw(st.lists(st.sampled_from(["66", "43"]), min_size=1, max_size=2, unique=True))
    chosen = [*others, "url"] if draw(st.integers(0, 3)) else ["66", "43"]
    options: dict[int, OptionValue] = {}
    if "url" in chosen:
        options[url_option] = draw(st.one_of(
            urls(protocol=draw(st.sampled_from(FILE_PROTOCOLS))),
            st.just(""), urls(protocol=None, shapes=("none",))))
        if url_option != 160 and draw(st.booleans()):
            options[160] = draw(urls(protocol=draw(st.sampled_from(FILE_PROTOCOLS))))
    if "66" in chosen:
        options[66] = draw(hosts) if draw(st.booleans()) else draw(urls(
            protocol=draw(st.sampled_from(FILE_PROTOCOLS))))
    if "43" in chosen:
        options[43] = draw(option43_values())
    if draw(st.integers(0, 3)) == 0:
        options[67] = draw(option67_values())
    return options, url_option


@st.composite
def option_sets(draw: Any) -> tuple[dict[int, OptionValue], int]:
    """A combination of sources and the URL option setting it is read with."""
    steer = draw(st.integers(1, STEER_OF))
    if steer <= STEERED_NAMES:
        return draw(separating_sets())
    if steer <= STEERED_NAMES + STEERED_ORDER:
        return draw(precedence_sets())
    url_option = draw(st.sampled_from([160] * 5 + [OVERRIDE_OPTION]))
    sources = draw(st.lists(st.sampled_from(["url", "66", "67", "43", "decoy-160"]),
                            min_size=1, max_size=4, unique=True))
    options: dict[int, OptionValue] = {}
    if "url" in sources:
        options[url_option] = draw(url_option_values())
    if "decoy-160" in sources and url_option != 160:
        options[160] = draw(url_option_values())
    if "66" in sources:
        options[66] = draw(option66_values())
    if "67" in sources:
        options[67] = draw(option67_values())
    if "43" in sources:
        options[43] = draw(option43_values())
    return options, url_option


def make_case(options: Mapping[int, OptionValue], url_option: int = 160,
              *, origin: str = "generated") -> Case:
    """A catalogue case for these options; its id is a digest of what it sends."""
    digest = hashlib.sha256(case_key(options, url_option).encode()).hexdigest()[:10]
    return Case(id=f"explore/{digest}", group="explore",
                title=f"explored input ({origin})", source="differential exploration",
                options=dict(sorted(options.items())), url_option=url_option,
                tags=("needs-settings",) if url_option != 160 else ())


def case_key(options: Mapping[int, OptionValue], url_option: int) -> str:
    parts = [f"u{url_option}"]
    for code, value in sorted(options.items()):
        parts.append(f"{code}={value!r}")
    return "|".join(parts)


cases: st.SearchStrategy[Case] = option_sets().map(lambda ou: make_case(ou[0], ou[1]))


def generate_cases(seed: int, count: int, *, extra_names: bool = True) -> list[Case]:
    """``count`` cases drawn from :data:`cases` by hypothesis seeded with ``seed``.

    The same ``(seed, count)`` gives the same list (hypothesis's generation is
    deterministic under ``@seed``, with no example database). Duplicates are dropped and
    made up by further rounds under seeds derived from ``seed``. ``extra_names=False``
    leaves out values with more than two ``;``-separated names. Drawing costs ~15 ms a
    case, so lists are memoised (cases are immutable).
    """
    return list(_generate(seed, count, extra_names))


@functools.lru_cache(maxsize=32)
def _generate(seed: int, count: int, extra_names: bool) -> tuple[Case, ...]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    out: list[Case] = []
    seen: set[str] = set()

    @settings(max_examples=max(1, count), database=None, phases=[Phase.generate],
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(cases)
    def collect(case: Case) -> None:
        if case.id not in seen and len(out) < count:
            seen.add(case.id)
            out.append(case)

    _EXTRA_NAMES.on = extra_names
    try:
        with _without_local_constants():
            for round_ in range(20):  # duplicates are dropped: draw again, derived seed
                if len(out) >= count:
                    break
                seeded(seed if round_ == 0 else seed * 1_000_003 + round_)(collect)()
    finally:
        _EXTRA_NAMES.on = True
    return tuple(out)


_CONSTANTS_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis (6.13x+) sometimes draws a constant found in the source of any *local*
    module loaded in the process, so the same seed gave other cases under pytest than
    from ``hil explore``, and other cases again after an edit anywhere in the repository.
    Generation here sees only hypothesis's own constants: ``(seed, count)`` means one
    list of cases, wherever it is drawn."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a hypothesis without the constant pools
        yield
        return
    if not hasattr(providers, "_get_local_constants"):  # pragma: no cover
        yield
        return
    empty = providers.Constants()
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    with _CONSTANTS_LOCK:
        original = providers._get_local_constants
        providers._get_local_constants = lambda: empty
        if cache is not None:
            cache.cache.clear()
        try:
            yield
        finally:
            providers._get_local_constants = original
            if cache is not None:
                cache.cache.clear()


def case_size(case: Case, ip: str = SIZE_IP) -> tuple[int, int, int]:
    """How big an input is: options sent, bytes sent, and whether it needs a setting."""
    rendered = case.render(ip, LAB_DNS_NAME)
    return (len(rendered), sum(len(v) for v in rendered.values()),
            int(case.url_option != 160))
