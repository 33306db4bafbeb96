"""Hostile rig files are refused, fast and in bounded memory: YAML alias bombs, deep nesting,
huge files. Each is one located line naming the file, never a traceback; any input under
1 MB is parsed or refused within 1 s of CPU and 100 MB (measured in a fresh process, so no
other test's memory hides a peak). Limits: framework.rig.bounded_yaml."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.rig import RigError, load_rig, parse_rig
from framework.rig.bounded_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES, YamlBoundError, compose
from framework.sim.rigfile import MAX_PHONES, sim_rig_document

ROOT = Path(__file__).resolve().parents[2]
EXPANDS = re.compile(rf"^(?P<file>.+):\d+:\d+: the document expands to more than {MAX_NODES} "
                     rf"nodes \(YAML aliases\): refused$")
TOO_MANY = re.compile(rf"^(?P<file>.+):\d+:\d+: the document has more than {MAX_NODES} nodes: "
                      rf"refused$")


def bomb(levels: int = 14, fan: int = 9) -> str:
    """``levels`` anchors, each a list of ``fan`` aliases of the one before (9**14 nodes)."""
    lines = ["a0: &a0 [x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def bomb_size(levels: int, fan: int) -> int:
    """Expanded node count of ``bomb(levels, fan)``, computed apart from the loader."""
    size = 2  # [x]
    total = 1 + 1 + size  # the top mapping, key a0, its list
    for _ in range(levels):
        size = 1 + fan * size
        total += 1 + size
    return total


# --- measured in a fresh process ------------------------------------------------------------

PROBE = r"""
import json, resource, sys, time
from framework.rig import RigError, load_rig
load_rig("rigs/sim.yaml")                      # imports and caches warm, then the baseline
before = resource.getrusage(resource.RUSAGE_SELF)
wall = time.perf_counter()
try:
    load_rig(sys.argv[1])
    message = ""
except RigError as exc:
    message = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"message": message, "wall": time.perf_counter() - wall,
                  "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                  "peak_mb": (after.ru_maxrss - before.ru_maxrss) / 1024}))
"""


def measure(path: Path) -> dict[str, object]:
    """Load ``path`` in a fresh interpreter: its message, CPU seconds and extra peak RSS."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], cwd=ROOT, timeout=60,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


HOSTILE = {
    "bomb-14x9": bomb(),
    "flow-nesting-10000": "[" * 10_000,
    "block-nesting-10000": "- " * 10_000 + "x\n",
    "mapping-nesting-5000": "a: {" * 5_000 + "}" * 5_000 + "\n",
    "flat-list-1MB": "[" + "1," * 499_000 + "1]\n",
    "many-keys-1MB": "".join(f"k{i}: v\n" for i in range(95_000)),
    "near-limit-phones": "phones: [" + "{}," * (MAX_NODES - 10) + "{}]\n",
    "base-60-number": "name: " + "1:" * 400_000 + "1\n",
    "long-number": "name: " + "9" * 999_000 + "\n",
    "long-string": 'name: "' + "x" * 999_000 + '"\n',
    "comment-1MB": "# " + "x" * 999_000 + "\n",
    "aliased-phones": "p: &p {mac: zz}\nphones: [" + "*p, " * 200_000 + "*p]\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_under_1mb_is_refused_fast_in_bounded_memory(
        tmp_path: Path, name: str) -> None:
    text = HOSTILE[name]
    assert len(text.encode()) <= MAX_BYTES
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = measure(path)
    message = str(result["message"])
    assert message, f"{name}: accepted"
    lines = message.splitlines()
    assert all(line.startswith(f"{path}:") for line in lines), lines
    assert "Traceback" not in message
    assert float(str(result["cpu"])) < 1.0, f"{name}: {result['cpu']:.2f} s of CPU"
    assert float(str(result["peak_mb"])) < 100, f"{name}: {result['peak_mb']:.0f} MB"
    if name.startswith(("bomb", "aliased")):
        assert len(lines) == 1 and EXPANDS.match(lines[0]), lines
    if name.startswith(("flat-list", "many-keys")):
        assert len(lines) == 1 and TOO_MANY.match(lines[0]), lines
    if "nesting" in name:
        assert len(lines) == 1 and "nesting" in lines[0], lines


def test_the_14x9_bomb_is_located_at_the_alias_that_passes_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    started = time.monotonic()
    with pytest.raises(RigError) as err:
        load_rig(path)
    assert time.monotonic() - started < 5  # a hang would be minutes; CPU is measured above
    assert bomb_size(4, 9) <= MAX_NODES < bomb_size(5, 9)  # a0..a4 fit, a5 (line 6) does not
    match = EXPANDS.match(str(err.value))
    assert match and match["file"] == f"{path}" and str(err.value).startswith(f"{path}:6:")


def test_larger_than_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: x\n# " + "x" * MAX_BYTES + "\n")
    expected = f"{path}: the rig file is larger than {MAX_BYTES} bytes: refused"
    with pytest.raises(RigError) as err:
        load_rig(path)
    assert str(err.value) == expected
    with pytest.raises(RigError) as err:
        parse_rig(path.read_text(), str(path))
    assert str(err.value) == expected
    # an endless file is read only up to the limit
    with pytest.raises(RigError, match=r"^/dev/zero: the rig file is larger than"):
        load_rig("/dev/zero")


def test_cli_refuses_a_bomb_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    hil = ROOT / ".venv" / "bin" / "hil"
    for command in ("validate", "check"):
        done = subprocess.run([str(hil), "rig", command, "--rig", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "HIL_RIG": ""})
        assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith(f"hil: error: {path}:6:"), lines
        assert EXPANDS.match(lines[0].removeprefix("hil: error: ")), lines
        assert done.stdout == ""


# --- real rigs fit, with room -----------------------------------------------------------------

def test_real_rigs_fit_the_limits_with_room() -> None:
    for path in sorted((ROOT / "rigs").glob("*.yaml")):
        load_rig(path)
    doc = sim_rig_document(prefix="hilt-rb", phones=MAX_PHONES)
    doc["phones"] = (doc["phones"] * (256 // len(doc["phones"]) + 1))[:256]  # a 256-phone bench
    text = yaml.safe_dump(doc, sort_keys=False)
    assert compose(text) is not None
    assert len(text.encode()) < MAX_BYTES / 4


def test_merge_keys_work_and_own_keys_win() -> None:
    node = compose("d: &d {a: 1, b: 2}\ne: {<<: *d, b: 3}\n")
    assert node is not None
    with pytest.raises(RigError) as err:  # not a rig, but the merge itself is fine
        parse_rig("d: &d {a: 1, b: 2}\ne: {<<: *d, b: 3}\n", "m.yaml")
    assert "merge" not in str(err.value) and "duplicate" not in str(err.value)


# --- hypothesis: bombs of any shape, nesting of any depth -------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels=st.integers(1, 20), fan=st.integers(1, 12))
def test_any_bomb_is_refused_exactly_past_the_limit(levels: int, fan: int) -> None:
    text = bomb(levels, fan)
    size = bomb_size(levels, fan)
    started = time.process_time()
    try:
        parse_rig(text, "mutant.yaml")
    except RigError as exc:
        lines = str(exc).splitlines()
        refused = bool(EXPANDS.match(lines[0]))
        assert not refused or len(lines) == 1, lines
        assert all(line.startswith("mutant.yaml") for line in lines), lines
    else:
        pytest.fail("a bomb made a rig")
    assert time.process_time() - started < 1.0
    assert refused == (size > MAX_NODES), (size, lines[0])


@st.composite
def dags(draw: st.DrawFn) -> tuple[str, int]:
    """A document of anchored lists that alias earlier ones at random, and its expanded size
    counted apart from the loader."""
    count = draw(st.integers(1, 12))
    sizes: list[int] = []
    lines = []
    total = 1  # the top mapping
    for i in range(count):
        refs = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=6)) if i else []
        scalars = draw(st.integers(0, 3))
        items = [f"*n{r}" for r in refs] + ["s"] * scalars
        size = 1 + sum(sizes[r] for r in refs) + scalars
        sizes.append(size)
        total += 1 + size
        lines.append(f"n{i}: &n{i} [{', '.join(items)}]")
    return "\n".join(lines) + "\n", total


@settings(max_examples=200, deadline=None)
@given(dags(), st.integers(-3, 3))
def test_the_count_is_the_expanded_size(doc: tuple[str, int], offset: int) -> None:
    text, size = doc
    limit = max(size + offset, 1)
    try:
        compose(text, max_nodes=limit)
        refused = False
    except YamlBoundError as exc:
        refused = True
        assert exc.mark is not None and f"more than {limit} nodes" in exc.problem
    assert refused == (size > limit), (text, size, limit)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 3000), style=st.sampled_from(["flow-list", "flow-map", "block"]))
def test_any_nesting_is_parsed_or_refused_in_one_line(depth: int, style: str) -> None:
    if style == "block":
        depth = min(depth, 400)  # indentation makes the text quadratic in the depth
    if style == "flow-list":
        text = "[" * depth + "x" + "]" * depth + "\n"
    elif style == "flow-map":
        text = "{a: " * depth + "x" + "}" * depth + "\n"
    else:
        text = "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "x\n"
    started = time.process_time()
    try:
        node = compose(text)
        refused = ""
    except (YamlBoundError, yaml.YAMLError) as exc:
        refused = str(exc)
    assert time.process_time() - started < 1.0
    assert bool(refused) == (depth > MAX_DEPTH), (depth, refused)
    if not refused:
        assert node is not None
    with pytest.raises(RigError) as err:
        parse_rig(text, "mutant.yaml")
    lines = str(err.value).splitlines()
    assert all(line.startswith("mutant.yaml") for line in lines), lines
    if refused:
        assert len(lines) == 1 and "nesting" in lines[0], lines


def test_safe_load_for_other_yaml_files_keeps_the_bounds() -> None:
    """framework.rig.bounded_yaml.safe_load: the drop-in for yaml.safe_load on user files."""
    from yaml.error import MarkedYAMLError

    from framework.rig.bounded_yaml import safe_load

    for path in sorted((ROOT / "rigs").glob("*.yaml")):
        text = path.read_text()
        assert safe_load(text) == yaml.safe_load(text)
    assert safe_load("") is None
    with pytest.raises(MarkedYAMLError) as err:
        safe_load(bomb())
    assert err.value.problem_mark is not None and err.value.problem_mark.line == 5
    assert f"more than {MAX_NODES} nodes" in str(err.value.problem)
    with pytest.raises(yaml.YAMLError, match="cannot read this value"):
        safe_load("when: 2001-13-01\n")
