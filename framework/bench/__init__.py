"""The bench health check (``hil rig check``): is every PDU, console and phone usable?

Owns :mod:`framework.bench.health` (the checks and their report) and
:mod:`framework.bench.cli` (the ``check`` command, mounted under ``hil rig`` by
framework/cli.py). It sits above the drivers it exercises, so it may import
framework.phone, framework.console, framework.power, framework.services, framework.dhcp,
framework.rig, framework.resolution and the bottom modules (errors, records, netns);
never framework.sim, framework.report, framework.runner or anything above them.
"""
