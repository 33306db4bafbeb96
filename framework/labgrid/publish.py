"""Create or update places on the coordinator from their definitions (``hil lab publish
--apply``): create when missing, add the match, set the tags and the comment. Idempotent."""

from __future__ import annotations

from collections.abc import Iterable

from framework.labgrid.client import LabgridClient
from framework.labgrid.places import PlaceDefinition


def apply_places(client: LabgridClient, definitions: Iterable[PlaceDefinition]) -> list[str]:
    """Bring each place to its definition; one line per place saying what changed."""
    existing = {p.name: p for p in client.places()}
    lines = []
    for d in definitions:
        done = []
        place = existing.get(d.name)
        if place is None:
            client.create_place(d.name)
            done.append("created")
        if place is None or d.match not in place.matches:
            client.add_match(d.name, d.match)
            done.append(f"match {d.match}")
        if place is None or dict(place.tags) != dict(d.tags):
            client.set_tags(d.name, d.tags)
            done.append("tags " + ", ".join(f"{k}={v}" for k, v in sorted(d.tags.items())))
        if place is None or place.comment != d.comment:
            client.set_comment(d.name, d.comment)
        lines.append(f"place {d.name}: {'; '.join(done) if done else 'up to date'}")
    return lines
