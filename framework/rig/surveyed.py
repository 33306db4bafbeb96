"""What ``hil rig survey --write`` recorded about a phone (``surveyed:`` in its rig section).

``hil run`` compares ``firmware`` with the version the phone reports and warns when they
differ: the dialect and timings in the rig file were measured on another release.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Surveyed"]


class Surveyed(BaseModel):
    """The survey run that wrote the phone's dialect, and what it measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: str = Field(min_length=1, description="the survey run id (reports/<run>/survey.json)")
    firmware: str = Field(min_length=1, description="the firmware version the phone reported")
    triggers: list[str] = Field(default_factory=list, description="control paths that worked")
    #: medians over the repetitions, per trigger: trigger -> first DHCP message / last request
    to_dhcp_s: dict[str, float] = Field(default_factory=dict)
    to_last_request_s: dict[str, float] = Field(default_factory=dict)
