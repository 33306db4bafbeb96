"""The offline oracle plans with the firmware class the rig names, not a fixed one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.explore.assess import assess
from framework.explore.grammar import make_case
from framework.explore.oracle import PlannerOracle, planner_oracles
from framework.sim.config import SimConfigError
from framework.sim.firmware import (
    Deviation,
    Faithful400HD,
    PlannedRequest,
    ProvisioningPlan,
    Source,
    Wait,
)
from tests.explore.conftest import SIM_PROFILE
from tests.sim.harness import LAB_IP, phones, rig_document


class TinyFirmware:
    """A user's firmware model: always asks for ``/tiny/<MAC>.cfg`` at the lab server,
    after a delay the oracle must ignore; ``shout`` upper-cases the path."""

    DEVIATIONS: Mapping[str, Deviation] = {
        "shout": Deviation("shout", "the path is upper case", "names keep their case")}

    def __init__(self, deviations: Iterable[str] = ()) -> None:
        self.deviations = frozenset(deviations)

    def plan(self, options: Mapping[int, bytes], model: str, mac: str,
             settings: Mapping[str, str]) -> ProvisioningPlan:
        path = f"/tiny/{model}-{mac}.cfg"
        if "shout" in self.deviations:
            path = path.upper()
        return ProvisioningPlan(Source.STATIC_URL, (
            Wait(30, "settle"), PlannedRequest("configuration", "http", LAB_IP, path)))


TINY = f"{__name__}:TinyFirmware"
CASE = make_case({160: "http://{ip}/fw.img;cfg.cfg"})


def write_rig(tmp_path: Path, count: int = 3, **sim: Any) -> Path:
    document = rig_document(phones(count), **sim)
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def files(oracle: PlannerOracle) -> list[str | None]:
    return [o.url for o in oracle.run(CASE).files]


def test_the_rigs_firmware_class_plans(tmp_path: Path) -> None:
    path = write_rig(tmp_path, firmware=TINY)
    document = yaml.safe_load(path.read_text())
    document["sim"]["phones"]["ph2"]["deviations"] = ["shout"]
    document["sim"]["phones"]["ph3"]["firmware"] = "framework.sim.firmware:Faithful400HD"
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    ph1, ph2, ph3 = planner_oracles(path)
    assert isinstance(ph1.firmware_impl, TinyFirmware)
    assert (ph1.name, ph1.model, ph1.mac, ph1.firmware) == ("ph1", "440HD", "00908F000001",
                                                            "2.2.8.61")
    assert files(ph1) == [f"http://{LAB_IP}/tiny/440HD-00908F000001.cfg"]
    assert files(ph2) == [f"http://{LAB_IP}/TINY/440HD-00908F000002.CFG"]
    assert isinstance(ph3.firmware_impl, Faithful400HD)  # a phone's own class wins
    assert files(ph3) == [f"http://{LAB_IP}/fw.img", f"http://{LAB_IP}/cfg.cfg"]
    assert [o.name for o in planner_oracles(path, phones=["ph2"])] == ["ph2"]


def test_the_tiny_firmware_disagrees_with_the_manual_where_the_faithful_one_agrees(
        tmp_path: Path) -> None:
    tiny, = planner_oracles(write_rig(tmp_path, count=1, firmware=TINY))
    faithful, = planner_oracles(write_rig(tmp_path, count=1))
    assert assess(faithful.run(CASE), SIM_PROFILE).agree
    assert not assess(tiny.run(CASE), SIM_PROFILE).agree


def test_release_deviations_of_the_installed_version_apply(tmp_path: Path) -> None:
    path = write_rig(tmp_path, count=1, firmware=TINY)
    document = yaml.safe_load(path.read_text())
    document["sim"]["phones"]["ph1"]["release_deviations"] = {"2.2.8.61": ["shout"]}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    oracle, = planner_oracles(path)
    assert files(oracle) == [f"http://{LAB_IP}/TINY/440HD-00908F000001.CFG"]


def test_a_deviation_the_class_lacks_is_one_line(tmp_path: Path) -> None:
    path = write_rig(tmp_path, count=1, firmware=TINY)
    document = yaml.safe_load(path.read_text())
    document["sim"]["phones"]["ph1"]["deviations"] = ["mac-case-flipped"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(SimConfigError) as caught:
        planner_oracles(path)
    assert str(caught.value) == (
        f"{path}: sim.phones.ph1.deviations: unknown deviation(s) mac-case-flipped; known: "
        f"shout (phone ph1, firmware class {TINY})")


def test_the_class_can_be_given_by_name_or_as_a_class() -> None:
    by_name = PlannerOracle(["shout"], firmware_class=TINY)
    by_class = PlannerOracle(["shout"], firmware_class=TinyFirmware)
    assert files(by_name) == files(by_class) == [f"http://{LAB_IP}/TINY/440HD-00908F000001.CFG"]
    assert isinstance(PlannerOracle().firmware_impl, Faithful400HD)  # the default
