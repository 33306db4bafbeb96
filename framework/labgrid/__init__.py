"""Lab scale through labgrid: places, reservations and locks from a labgrid coordinator.

labgrid is driven through its command line from its own virtual environment (it replaces
pyserial with its fork), never imported here. ``client`` wraps ``labgrid-client``,
``places`` maps rig files to place definitions and exporter configuration and back,
``booking`` reserves/locks/always unlocks one place, ``runner`` is ``hil lab run``,
``janitor`` cleans what killed runs left, ``cli`` registers the commands under ``hil lab``.

Imports (layer 2 of pyproject.toml's contracts): release, runner, report and the rest
below; never framework.explore (its independent sibling) nor the entry points
(framework.cli, framework.run, the pytest plugin): framework/cli.py mounts ``cli``.
"""
