"""Differential exploration (issue 10): generated DHCP inputs against the resolution core.

``grammar`` (hypothesis strategies, seeded generation), ``assess`` (a trial judged under a
profile), ``shrink`` (minimal inputs with the phone as oracle), ``confirm`` (a finding
only when reproduced, flaky ones apart), ``infer`` (the behaviour table and inferred
profile), ``engine`` (the three phases), ``findings`` (files written), ``cli``
(``hil explore``).

Imports (layer 2 of pyproject.toml's contracts): release, runner, report, sim and the
rest below; never framework.labgrid (its independent sibling) nor the entry points
(framework.cli, framework.run, the pytest plugin).
"""
