"""Booking one labgrid place: reserve by tags, wait for the allocation, lock; and always
unlock and cancel the reservation again, on success, failure, Ctrl-C or SIGTERM.

Only what we own is released: labgrid refuses to unlock a place another user locked (we
never ``--kick``), and a lock taken from us is reported in ``left_alone``, not undone.
A run killed with SIGKILL cannot clean up: its lock stays until ``hil lab janitor`` finds
the owner's pid gone (framework.labgrid.janitor).

Usage::

    with PlaceBooking(client, {"model": "440HD", "name": "bench-a"}, wait_s=600) as place:
        resources = client.acquired_resources(place)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType

from framework.labgrid.client import LabgridClient, LabgridError

log = logging.getLogger(__name__)


class PlaceBooking:
    """Context manager: the name of the locked place inside, released on every exit."""

    def __init__(self, client: LabgridClient, filters: Mapping[str, str], *,
                 wait_s: float = 3600.0) -> None:
        self.client = client
        self.filters = dict(filters)
        self.wait_s = wait_s
        self.token: str | None = None
        self.place: str | None = None
        self.locked = False
        #: Problems met while releasing (kept for the report; releasing never raises).
        self.release_errors: list[str] = []
        #: Set when the lock had been taken from us: what we did not release (fencing).
        self.left_alone: str | None = None

    def __enter__(self) -> str:
        try:
            self.token = self.client.reserve(self.filters)
            reservation = self.client.wait(self.token, self.wait_s)
            self.place = reservation.allocations[0]
            self.client.lock(self.place, token=self.token)
            self.locked = True
        except BaseException:
            self.release()
            raise
        return self.place

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        """Unlock the place and cancel the reservation (each step tried once)."""
        if not self.locked and self.place:
            # A lock interrupted in flight may have been granted: ask the coordinator.
            try:
                acquired = self.client.show(self.place).acquired or ""
                self.locked = acquired.endswith(f"/{self.client.owner}")
            except LabgridError as exc:
                self.release_errors.append(str(exc))
        if self.locked and self.place:
            try:
                self.client.unlock(self.place)
                self.locked = False
            except LabgridError as exc:
                if "acquired by a different user" in str(exc):
                    # our lock was taken away (kicked): the new owner's lock is not ours
                    self.locked = False
                    self.left_alone = f"place {self.place} is now locked by someone else: " \
                                      "left alone"
                    log.warning("%s", self.left_alone)
                else:
                    self.release_errors.append(str(exc))
                    log.warning("could not unlock %s: %s", self.place, exc)
        if self.token:
            try:
                self.client.cancel_reservation(self.token)
            except LabgridError as exc:
                # a reservation that already expired or was cancelled is fine
                if "does not exist" not in str(exc):
                    self.release_errors.append(str(exc))
            self.token = None
