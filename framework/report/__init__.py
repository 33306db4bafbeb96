"""Renderings of the certification record: HTML report, run-to-run diff, JUnit.

Reads records through framework.records and writes files; it never sees a live run.
Imports (layer 5 of pyproject.toml's contracts): bench and the layers below it, in
practice framework.records; never framework.runner (a contract of its own) nor anything
above it.
"""
