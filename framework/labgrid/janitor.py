"""`hil lab janitor`: release labgrid locks and reservations left by runs that died.

Our runs act under the labgrid user ``<login>.hil-<pid>`` (framework.labgrid.client), so a
lock or reservation whose owner is one of our runs on this host, with that pid no longer
alive, was left by a killed run (SIGKILL, power loss, OOM): the janitor unlocks the place
(``unlock --kick``) and cancels the reservation. Locks of live runs, of other hosts (their
pids cannot be checked from here: run the janitor there) and of other labgrid users are
never touched. Nor is a place that a `hil run` of the dead run still drives (an orphan,
framework.labgrid.fence): it stops by itself within seconds of its parent's death; the
janitor reports it and frees the place on its next sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from framework.labgrid.client import LabgridClient, LabgridError, owner_pid
from framework.labgrid.fence import orphans_holding, pid_alive

__all__ = ["JanitorAction", "pid_alive", "sweep"]



@dataclass(frozen=True)
class JanitorAction:
    """One thing the janitor did (or would do with ``dry_run``)."""

    kind: str  # "unlock" | "cancel-reservation"
    target: str  # place name or reservation token
    owner: str
    done: bool
    detail: str = ""


def sweep(client: LabgridClient, *, dry_run: bool = False) -> list[JanitorAction]:
    """Release everything held by dead runs of ours on this host."""
    actions: list[JanitorAction] = []
    driven: set[str] = set()
    for place in client.places():
        pid = owner_pid(place.acquired)
        if pid is None or pid_alive(pid):
            continue
        assert place.acquired is not None
        orphans = orphans_holding(place.acquired.rsplit("/", 1)[-1], place.name)
        if orphans:
            driven.add(place.name)
            actions.append(JanitorAction(
                "unlock", place.name, place.acquired, False,
                f"left alone: hil run pid {', '.join(map(str, orphans))} of that run still "
                "drives it (it stops when it notices; sweep again)"))
            continue
        try:
            if not dry_run:
                client.unlock(place.name, kick=True)
            actions.append(JanitorAction("unlock", place.name, place.acquired, not dry_run))
        except LabgridError as exc:
            actions.append(JanitorAction("unlock", place.name, place.acquired, False, str(exc)))
    for res in client.reservations():
        pid = owner_pid(res.owner)
        if pid is None or pid_alive(pid) or driven & set(res.allocations):
            continue
        try:
            if not dry_run:
                client.cancel_reservation(res.token)
            actions.append(JanitorAction("cancel-reservation", res.token, res.owner, not dry_run,
                                         ", ".join(res.allocations)))
        except LabgridError as exc:
            actions.append(JanitorAction("cancel-reservation", res.token, res.owner, False,
                                         str(exc)))
    return actions
