"""Renderings of the certification record: HTML report, run-to-run diff, JUnit, PDF;
and the run's MANIFEST.json (manifest, signing, bundle: what `hil report verify` checks).

Reads records through framework.records and writes files; it never sees a live run.
Imports (layer 5 of pyproject.toml's contracts): bench and the layers below it, in
practice framework.records; never framework.runner (a contract of its own) nor anything
above it.
"""
