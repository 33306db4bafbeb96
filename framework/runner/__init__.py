"""The runner side: case catalogue, scheduling across phones, verdicts, the record.

Owns one certification run: the lab services stack, the sim process handle, the lanes
(one phone's case loop), the rig probe, verdicts, evidence and the record, and
``hil lab serve``. Imports (layer 4 of pyproject.toml's contracts): report, bench, sim,
phone, console, power, services, dhcp, rig, resolution and the bottom modules; never
release, labgrid, explore or the entry points (framework.cli, framework.run, the pytest
plugin), which drive the runner and not the other way round.
"""
