"""The sim's ``release_deviations``: a firmware version can carry catalogue deviations, so a
"release with a bug" exists on the simulated rig (the phone behaves per installed version)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.sim.config import SimConfigError, load_bench
from framework.sim.rigfile import write_sim_rig


def test_the_installed_version_selects_the_deviations(tmp_path: Path) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix="hilt-f0", phones=2,
                        deviations={"ph1": ["host-case-kept"]},
                        release_deviations={"ph1": {"2.2.9.1": ["mac-case-flipped"]}})
    ph1, ph2 = load_bench(rig).phones
    assert ph1.deviations_for("2.2.8.61") == {"host-case-kept"}
    assert ph1.deviations_for("2.2.9.1") == {"host-case-kept", "mac-case-flipped"}
    assert ph2.deviations_for("2.2.9.1") == frozenset()


def test_an_unknown_release_deviation_is_one_line_naming_the_key(tmp_path: Path) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix="hilt-f0", phones=1,
                        release_deviations={"ph1": {"2.2.9.1": ["nope"]}})
    with pytest.raises(SimConfigError) as err:
        load_bench(rig)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert "sim.phones.ph1.release_deviations" in message and "nope" in message


def test_release_deviations_for_an_unknown_phone_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown phone"):
        write_sim_rig(tmp_path / "rig.yaml", prefix="hilt-f0", phones=1,
                      release_deviations={"ph7": {"2.2.9.1": ["mac-case-flipped"]}})


def test_the_rig_file_carries_them_as_data(tmp_path: Path) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix="hilt-f0", phones=1,
                        release_deviations={"ph1": {"2.2.9.1": ["mac-case-flipped"]}})
    doc = yaml.safe_load(rig.read_text())
    assert doc["sim"]["phones"]["ph1"]["release_deviations"] == {"2.2.9.1": ["mac-case-flipped"]}
