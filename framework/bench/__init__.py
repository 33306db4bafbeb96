"""The bench health check (``hil rig check``): is every PDU, console and phone usable?

Owns :mod:`framework.bench.health` (the checks and their report) and
:mod:`framework.bench.cli` (the ``check`` command, mounted under ``hil rig`` by
framework/cli.py). Imports (layer 6 of pyproject.toml's contracts): the drivers it
exercises and what they stand on (phone, console, power, services, dhcp, rig, resolution,
records, errors, netns); never report, runner or anything above: a bench check talks to
the bench over the wire like a run does, so it has no use for framework.sim either.
"""
