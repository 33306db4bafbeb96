"""PlaceBooking always gives the place back: on success, on an error in the body, on
Ctrl-C, and when the lock itself was interrupted after the coordinator granted it.

The coordinator side is a recording stand-in here; test_lab_scale.py does the same against
a real coordinator."""

from __future__ import annotations

from typing import Any

import pytest

from framework.labgrid.booking import PlaceBooking
from framework.labgrid.client import LabgridError, Place, Reservation


class RecordingCoordinator:
    """Duck-typed LabgridClient: records the calls, grants what it is asked."""

    owner = "root.hil-1"

    def __init__(self, *, lock_fails_after_grant: bool = False,
                 wait_fails: bool = False) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.acquired: str | None = None
        self.lock_fails_after_grant = lock_fails_after_grant
        self.wait_fails = wait_fails

    def reserve(self, filters: dict[str, str]) -> str:
        self.calls.append(("reserve", *sorted(f"{k}={v}" for k, v in filters.items())))
        return "TOKEN"

    def wait(self, token: str, timeout_s: float) -> Reservation:
        self.calls.append(("wait", token))
        if self.wait_fails:
            raise KeyboardInterrupt
        return Reservation(token, f"vm/{self.owner}", "allocated", {}, ("bench-a",))

    def lock(self, place: str, *, token: str | None = None) -> None:
        self.calls.append(("lock", place))
        if self.lock_fails_after_grant:
            self.acquired = f"vm/{self.owner}"
            raise LabgridError("labgrid-client lock: killed")
        self.acquired = f"vm/{self.owner}"

    def show(self, place: str) -> Place:
        self.calls.append(("show", place))
        return Place(place, acquired=self.acquired)

    def unlock(self, place: str, *, kick: bool = False) -> None:
        self.calls.append(("unlock", place))
        self.acquired = None

    def cancel_reservation(self, token: str) -> None:
        self.calls.append(("cancel", token))


def _book(coord: RecordingCoordinator, body: Any = None) -> None:
    with PlaceBooking(coord, {"model": "440HD", "name": "bench-a"}) as place:  # type: ignore[arg-type]
        assert place == "bench-a"
        if body:
            body()


def test_success_unlocks_and_cancels() -> None:
    coord = RecordingCoordinator()
    _book(coord)
    assert coord.calls == [("reserve", "model=440HD", "name=bench-a"), ("wait", "TOKEN"),
                           ("lock", "bench-a"), ("unlock", "bench-a"), ("cancel", "TOKEN")]


@pytest.mark.parametrize("exc", [RuntimeError("bug in the run"), KeyboardInterrupt()])
def test_an_error_or_ctrl_c_in_the_body_still_unlocks(exc: BaseException) -> None:
    coord = RecordingCoordinator()

    def boom() -> None:
        raise exc
    with pytest.raises(type(exc)):
        _book(coord, boom)
    assert coord.calls[-2:] == [("unlock", "bench-a"), ("cancel", "TOKEN")]
    assert coord.acquired is None


def test_a_lock_granted_but_interrupted_is_released() -> None:
    coord = RecordingCoordinator(lock_fails_after_grant=True)
    with pytest.raises(LabgridError):
        _book(coord)
    assert coord.acquired is None
    assert ("unlock", "bench-a") in coord.calls and coord.calls[-1] == ("cancel", "TOKEN")


def test_ctrl_c_while_waiting_cancels_the_reservation() -> None:
    coord = RecordingCoordinator(wait_fails=True)
    with pytest.raises(KeyboardInterrupt):
        _book(coord)
    assert coord.calls[-1] == ("cancel", "TOKEN")
    assert not any(c[0] in ("lock", "unlock") for c in coord.calls)
