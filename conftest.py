"""Top-level conftest: only loads the framework's pytest plugin (when it exists).

The opt-in for a checkout that is not installed (``PYTHONPATH`` at the repository root).
Installed, the plugin comes through its ``pytest11`` entry point, named after the module:
pytest then finds ``framework.pytest_plugin`` registered and does not load it twice.
"""

import importlib.util

if importlib.util.find_spec("framework.pytest_plugin") is not None:
    pytest_plugins = ["framework.pytest_plugin"]
