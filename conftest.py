"""Top-level conftest: only loads the framework's pytest plugin (when it exists)."""

import importlib.util

if importlib.util.find_spec("framework.pytest_plugin") is not None:
    pytest_plugins = ["framework.pytest_plugin"]
