"""The optional `labgrid:` section of a rig file (framework.rig.model.LabgridPlace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.rig import RigError, load_rig
from framework.sim.rigfile import sim_rig_document


def _load(tmp_path: Path, labgrid: Any) -> Any:
    doc = sim_rig_document(prefix="hilt-g-f", phones=1)
    if labgrid is not None:
        doc["labgrid"] = labgrid
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_rig(path)


def test_rig_without_labgrid_section_is_unchanged(tmp_path: Path) -> None:
    assert _load(tmp_path, None).labgrid is None


def test_labgrid_section(tmp_path: Path) -> None:
    lg = _load(tmp_path, {"place": "bench-7", "tags": {"model": "440HD", "firmware": 2.2},
                          "exporter": "host-7", "group": "g"}).labgrid
    assert lg.place == "bench-7" and lg.exporter == "host-7" and lg.group == "g"
    assert dict(lg.tags) == {"model": "440HD", "firmware": "2.2"}


@pytest.mark.parametrize(("labgrid", "message"), [
    ({"tags": {"Model": "x"}}, "labgrid tag name"),
    ({"tags": {"model": "a b"}}, "tag model: expected a value"),
    ({"tags": ["model=x"]}, "mapping of tag"),
    ({"place": "has space"}, "expected a name"),
    ({"pleace": "x"}, "pleace"),
])
def test_bad_labgrid_section_names_the_key(tmp_path: Path, labgrid: Any, message: str) -> None:
    with pytest.raises(RigError) as info:
        _load(tmp_path, labgrid)
    assert message in str(info.value) and "labgrid" in str(info.value)
