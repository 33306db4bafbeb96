"""Shrinking an input that shows a disagreement to a minimal one, with the phone as oracle.

Each candidate costs a provisioning cycle on real hardware, so the shrinker is a greedy
loop over structured simplifications (drop an option, read 160 instead of the override,
a URL elsewhere as Option 66 without protocol, Option 67's names joined into Option 66,
drop white space, NULs, ports, directories, names, placeholders, padding; a host
becomes ``{ip}``; a vendor TLV becomes a plain string; odd protocol case becomes lower)
rather than hypothesis's byte-level shrinker, which would spend hundreds of boots.
A candidate is tried only if it is strictly smaller (:func:`case_size`), so the loop
ends; ``precheck`` (pure, free) drops candidates the core already rules out; results are
memoised; ``budget`` caps the phone runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from framework.explore.assess import Trial
from framework.explore.grammar import OVERRIDE_OPTION, OptionValue, case_key, case_size, make_case
from framework.runner.catalogue import LAB_DNS_NAME, Case, VendorTlv

_PROTO = re.compile(r"^\s*([A-Za-z]+)://")
_PORT = re.compile(r"^((?:[A-Za-z]+://)?[^/:;]+):\d+")
_NAME_ANY_CASE = re.compile(re.escape(LAB_DNS_NAME), re.IGNORECASE)
_RUN = re.compile(r"(.)\1{7,}")


def _text_simplifications(text: str) -> Iterator[str]:
    """Simpler spellings of one option value, most drastic first."""
    yield ""
    stripped = text.strip(" \t")
    yield stripped
    yield re.sub(r";[ \t]+", ";", text)
    m = _PROTO.match(text)
    if m:
        lead = text[:m.start(1)]
        yield lead + m.group(1).lower() + text[m.end(1):]
        yield lead + text[m.end():]                # no protocol
        for p in ("tftp", "http"):
            yield lead + p + text[m.end(1):]
    yield _NAME_ANY_CASE.sub("{name}", text)
    yield text.replace("{name}", "{ip}")
    yield _NAME_ANY_CASE.sub("{ip}", text)
    yield _PORT.sub(r"\1", text)
    body = m.end() if m else 0
    slash = text.find("/", body)
    if slash >= 0:
        head, path = text[:slash], text[slash:]
        yield head                                  # no names at all
        first, semi, rest = path.partition(";")
        if semi:
            yield head + first                       # no configuration name
            yield head + "/;" + rest                 # no firmware name
            yield head + first + ";" + rest.split(";")[0]   # drop extra names
            for cfg in ("c.cfg", "<MAC>.cfg"):
                yield head + first + ";" + cfg
        segments = first.split("/")
        if len(segments) > 2:                        # drop one directory, or all of them
            for i in range(1, len(segments) - 1):
                yield head + "/".join(segments[:i] + segments[i + 1:]) + semi + rest
            yield head + "/" + segments[-1] + semi + rest
        if segments[-1] and segments[-1] != "a.img":
            yield head + "/".join([*segments[:-1], "a.img"]) + semi + rest
    yield _RUN.sub(lambda r: r.group(1) * (len(r.group()) // 2), text)
    yield text.replace("<MODEL>_<MAC>_conf.cfg", "<MAC>.cfg")


def _value_simplifications(value: OptionValue) -> Iterator[OptionValue]:
    if isinstance(value, VendorTlv):
        yield value.text
        if value.suboption != 1:
            yield VendorTlv(1, value.text)
        for t in _text_simplifications(value.text):
            if t:
                yield VendorTlv(value.suboption, t)
        return
    if isinstance(value, bytes):
        core = value.rstrip(b"\x00")
        if core.isascii():
            yield core.decode()
        if value.endswith(b"\x00\x00"):
            yield core + b"\x00"
        if core.isascii():
            for t in _text_simplifications(core.decode()):
                yield t.encode() + value[len(core):]
        return
    yield from _text_simplifications(value)


def candidates(case: Case) -> Iterator[Case]:
    """Every one-step simplification of ``case`` (not yet filtered by size)."""
    options = dict(case.options)
    for code in sorted(options):
        yield make_case({k: v for k, v in options.items() if k != code}, case.url_option,
                        origin="shrunk")
    if case.url_option != 160 and 160 not in options:
        moved = {(160 if k == case.url_option else k): v for k, v in options.items()}
        yield make_case(moved, 160, origin="shrunk")
    if case.url_option != 160 and case.url_option not in options:
        yield make_case(options, 160, origin="shrunk")
    if 66 not in options:  # a URL elsewhere, as Option 66 without protocol (tftp default):
        for code in (case.url_option, 43):  # the same for a tftp URL, else for the phone
            value = options.get(code)
            text = value.text if isinstance(value, VendorTlv) else value
            m = _PROTO.match(text) if isinstance(text, str) else None
            if isinstance(text, str) and m:
                rest = {k: v for k, v in options.items() if k != code}
                yield make_case({**rest, 66: text[m.end():].strip()},
                                case.url_option, origin="shrunk")
    v66, v67 = options.get(66), options.get(67)
    if isinstance(v66, str) and isinstance(v67, str) and v67.strip():
        server = v66.strip().rstrip("/")
        if "/" not in server.split("://", 1)[-1]:  # 66 names no file: 67's names join it
            rest = {k: v for k, v in options.items() if k not in (66, 67)}
            yield make_case({**rest, 66: f"{server}/{v67.strip().lstrip('/')}"},
                            case.url_option, origin="shrunk")
    for code in sorted(options):
        for simpler in _value_simplifications(options[code]):
            if simpler != options[code]:
                yield make_case({**options, code: simpler}, case.url_option, origin="shrunk")


@dataclass
class ShrinkResult:
    case: Case
    trial: Trial
    steps: int          # accepted simplifications
    phone_runs: int     # candidates run on the phone
    exhausted: bool     # stopped by the budget rather than a local minimum


def shrink(start: Trial, run: Callable[[Case], Trial], still_shows: Callable[[Trial], bool],
           *, precheck: Callable[[Case], bool] = lambda c: True, budget: int = 60,
           on_run: Callable[[], None] | None = None) -> ShrinkResult:
    """Greedily simplify ``start.case`` while the phone still shows the disagreement.

    ``run`` gives a case to the phone; ``still_shows`` says whether a trial shows the
    same disagreement; ``precheck`` is a free, pure filter run before spending a boot.
    """
    best, best_trial = start.case, start
    tried: set[str] = {case_key(best.options, best.url_option)}
    runs = steps = 0
    improved = True
    while improved:
        improved = False
        size = case_size(best)
        pool = sorted((c for c in candidates(best) if case_size(c) < size),
                      key=case_size)
        for cand in pool:
            key = case_key(cand.options, cand.url_option)
            if key in tried:
                continue
            tried.add(key)
            if not precheck(cand):
                continue
            if runs >= budget:
                return ShrinkResult(best, best_trial, steps, runs, True)
            runs += 1
            trial = run(cand)
            if on_run is not None:
                on_run()
            if trial.broken is None and still_shows(trial):
                best, best_trial, steps, improved = cand, trial, steps + 1, True
                break
    return ShrinkResult(best, best_trial, steps, runs, False)


__all__ = ["OVERRIDE_OPTION", "ShrinkResult", "candidates", "shrink"]
